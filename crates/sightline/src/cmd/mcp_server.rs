//! `sightline mcp-server`: the demo's support tools as an MCP server on stdin/stdout. The
//! demo's agents start this program with it as a child process, so the MCP traffic they
//! record is real.

use std::process::ExitCode;

/// Runs `sightline mcp-server` until stdin closes.
pub fn run() -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(sightline_runtime::mcp_server::serve_stdio())
        .map_err(|e| anyhow::anyhow!("mcp server: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
