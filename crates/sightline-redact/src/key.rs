//! The HMAC key the `hash` action uses: where it comes from (a file, an environment variable,
//! or a random one for this process), and a type that never prints it. Kept apart so that the
//! only code touching key bytes is short enough to audit at a glance.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};

use crate::config::PolicyConfig;
use crate::error::{err, PolicyError};

/// HMAC-SHA256, the keyed hash.
type HmacSha256 = Hmac<sha2::Sha256>;

/// Where a policy's HMAC key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The policy never hashes, so it has no key.
    NotNeeded,
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(std::path::PathBuf),
    /// None was configured: a random key for this process; hashes do not correlate across runs.
    Ephemeral,
}

/// The HMAC key. Its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct HashKey(HmacSha256);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(**REDACTED**)")
    }
}

impl HashKey {
    /// Loads the policy's key (see [`load_key`]) and keys the hash with it.
    pub(crate) fn load(policy: &str, cfg: &PolicyConfig) -> Result<(Self, KeySource), PolicyError> {
        let (bytes, source) = load_key(policy, cfg)?;
        let mac = HmacSha256::new_from_slice(&bytes).map_err(|e| err(policy, "hash_key", e))?;
        Ok((Self(mac), source))
    }

    /// The keyed hash of `bytes`: `hmac:` and the first 16 bytes of HMAC-SHA256, in hex.
    pub(crate) fn hash(&self, bytes: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(bytes);
        let out = mac.finalize().into_bytes();
        let mut s = String::with_capacity(5 + 32);
        s.push_str("hmac:");
        for b in &out[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// Reads the policy's HMAC key: from `hash_key_file`, else from `hash_key_env`, else (unless
/// the policy requires one) a random key for this process.
fn load_key(policy: &str, cfg: &PolicyConfig) -> Result<(Vec<u8>, KeySource), PolicyError> {
    if let Some(path) = &cfg.hash_key_file {
        let bytes = std::fs::read(path).map_err(|e| {
            err(
                policy,
                "hash_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let trimmed = bytes.trim_ascii_end().to_vec();
        if trimmed.len() < 16 {
            return Err(err(
                policy,
                "hash_key_file",
                "the key must be at least 16 bytes",
            ));
        }
        return Ok((trimmed, KeySource::File(path.clone())));
    }
    if let Some(var) = &cfg.hash_key_env {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let bytes = v.into_encoded_bytes();
            if bytes.len() < 16 {
                return Err(err(
                    policy,
                    "hash_key_env",
                    format!("${var} must hold at least 16 bytes"),
                ));
            }
            return Ok((bytes, KeySource::Env(var.clone())));
        }
    }
    if cfg.require_hash_key {
        return Err(err(
            policy,
            "hash_key_env",
            "the policy hashes values but no key is set (hash_key_env or hash_key_file)",
        ));
    }
    let mut rng = fastrand::Rng::new();
    Ok(((0..32).map(|_| rng.u8(..)).collect(), KeySource::Ephemeral))
}
