//! `sightline check-config`: validates a configuration file (or the embedded defaults) and
//! prints the effective settings, so a deployment can check its file before using it.

use std::path::Path;
use std::process::ExitCode;

use sightline_pipeline::Config;

/// Runs `sightline check-config` on `path` (the embedded defaults when `None`).
pub fn run(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let source = path.map_or("embedded defaults".to_owned(), |p| p.display().to_string());
    eprintln!("config ok: {source}");
    print!("{}", toml::to_string_pretty(&config)?);
    Ok(ExitCode::SUCCESS)
}
