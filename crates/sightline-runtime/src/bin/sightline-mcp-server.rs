//! Sightline's demo MCP server (see `sightline_runtime::mcp_server`): over stdio, or with
//! `--http HOST:PORT` over streamable HTTP at `/mcp` (it prints the URL, then serves until
//! killed).

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.as_slice() {
        [] => rt.block_on(sightline_runtime::mcp_server::serve_stdio()),
        [flag, addr] if flag == "--http" => rt.block_on(async {
            let server = sightline_runtime::mcp_server::serve_http(addr).await?;
            println!("{}", server.url());
            std::future::pending::<()>().await;
            Ok(())
        }),
        _ => Err("usage: sightline-mcp-server [--http HOST:PORT]".into()),
    }
}
