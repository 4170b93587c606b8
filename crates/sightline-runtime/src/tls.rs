//! TLS for the runtime's HTTP clients (MCP over streamable HTTP, the OpenAI-compatible model
//! client): rustls with the ring provider (the one the rest of Sightline uses), installed
//! once as the process default, and the platform's certificate verifier.

/// Installs ring as the process's rustls provider, unless one is already installed.
pub(crate) fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
