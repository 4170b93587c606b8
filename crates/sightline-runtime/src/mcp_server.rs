//! A small MCP server of ours (rmcp's server side, over stdio): the tools the demo's support
//! agents call, answering from fixed data so the demo needs no network. Run it as
//! `sightline-mcp-server` (or `sightline mcp-server`).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};

/// `lookup_order` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct OrderRequest {
    /// The order number.
    pub order_id: String,
}

/// `search_kb` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
}

/// `issue_refund` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct RefundRequest {
    /// The order number.
    pub order_id: String,
    /// The amount, in cents.
    pub amount_cents: u64,
}

/// The demo's support tools.
#[derive(Debug, Clone)]
pub struct SupportTools {
    // Read by the code #[tool_handler] generates.
    #[allow(dead_code)]
    tool_router: ToolRouter<Self>,
}

impl Default for SupportTools {
    fn default() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl SupportTools {
    /// Looks an order up.
    #[tool(description = "Look up an order's status by its number")]
    fn lookup_order(&self, Parameters(r): Parameters<OrderRequest>) -> String {
        let n: u64 = r.order_id.bytes().map(u64::from).sum();
        let status = ["shipped", "delivered", "processing", "returned"][(n % 4) as usize];
        serde_json::json!({ "order_id": r.order_id, "status": status }).to_string()
    }

    /// Searches the knowledge base.
    #[tool(description = "Search the support knowledge base")]
    fn search_kb(&self, Parameters(r): Parameters<SearchRequest>) -> String {
        format!(
            "3 articles match {:?}: refunds, shipping times, returns",
            r.query
        )
    }

    /// Issues a refund (pretend).
    #[tool(description = "Refund an order (needs a human's approval first)")]
    fn issue_refund(&self, Parameters(r): Parameters<RefundRequest>) -> String {
        format!("refunded {} cents on order {}", r.amount_cents, r.order_id)
    }
}

#[tool_handler]
impl ServerHandler for SupportTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Sightline's demo support tools")
    }
}

/// Serves the tools on stdin/stdout until the client goes away.
pub async fn serve_stdio() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let service = SupportTools::default()
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}

/// A running streamable-HTTP MCP server (see [`serve_http`]); stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// The MCP endpoint, `http://{addr}/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the tools over streamable HTTP on `addr` (port 0 picks one), at `/mcp`, on the
/// current tokio runtime.
pub async fn serve_http(addr: &str) -> std::io::Result<HttpServer> {
    use rmcp::transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    };
    let service = StreamableHttpService::new(
        || Ok(SupportTools::default()),
        std::sync::Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(HttpServer { addr, task })
}
