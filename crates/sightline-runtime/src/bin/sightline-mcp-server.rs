//! Sightline's demo MCP server over stdio (see `sightline_runtime::mcp_server`).

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(sightline_runtime::mcp_server::serve_stdio())
}
