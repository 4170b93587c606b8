//! Real components on loopback: a `sightline demo` serving `/metrics`, Prometheus scraping it
//! (with Sightline's rules), and Alertmanager. Each is a child process killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{sightline_bin, workspace_root};

/// A child process killed when dropped.
pub struct Running {
    pub(crate) child: Child,
    /// Its address, `host:port`.
    pub addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `sightline demo` with `args` (plus a free metrics port) and returns once it serves
/// `/metrics`.
pub fn demo(data_dir: &Path, args: &[&str]) -> anyhow::Result<Running> {
    let mut child = Command::new(sightline_bin()?)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("demo")
        .args(args)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env_remove("SIGHTLINE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .context("the demo exited before serving /metrics")??;
        if let Some(url) = line.strip_prefix("metrics: http://") {
            break url.trim_end_matches("/metrics").to_owned();
        }
    };
    // Keep draining stderr so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Running { child, addr })
}

/// One HTTP GET; returns the status code and body.
pub fn http_get(addr: &str, path_and_query: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Starts Prometheus scraping `target` every second, with Sightline's alert rules evaluated
/// every second, sending alerts to `alertmanager` if given; returns once it answers.
pub fn prometheus(dir: &Path, target: &str, alertmanager: Option<&str>) -> anyhow::Result<Running> {
    let port = free_port()?;
    let rules = workspace_root().join("config/alerts/sightline.rules.yml");
    let alerting = alertmanager.map_or(String::new(), |am| {
        format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{am}\"]\n"
        )
    });
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n{alerting}scrape_configs:\n  - job_name: sightline\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.display()
        ),
    )?;
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log"))?)
        .spawn()
        .context("prometheus is needed (Debian package `prometheus`; scripts/test installs it)")?;
    let running = Running {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    wait_until(Duration::from_secs(60), || {
        Ok(http_get(&running.addr, "/-/ready")?.0 == 200)
    })
    .context("prometheus did not become ready")?;
    Ok(running)
}

/// Starts Alertmanager with `config/alertmanager.yml`; returns once it answers.
pub fn alertmanager(dir: &Path) -> anyhow::Result<Running> {
    let port = free_port()?;
    let cluster = free_port()?;
    let child = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            workspace_root().join("config/alertmanager.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log"))?)
        .spawn()
        .context("prometheus-alertmanager is needed (scripts/test installs it)")?;
    let running = Running {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    wait_until(Duration::from_secs(60), || {
        Ok(http_get(&running.addr, "/-/ready")?.0 == 200)
    })
    .context("alertmanager did not become ready")?;
    Ok(running)
}

/// Evaluates `expr` through Prometheus's HTTP API; returns the `data` object.
pub fn query(prometheus: &str, expr: &str) -> anyhow::Result<serde_json::Value> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .finish();
    let (status, body) = http_get(prometheus, &format!("/api/v1/query?{q}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("HTTP {status}: {body}"))?;
    anyhow::ensure!(v["status"] == "success", "{expr}: {body}");
    Ok(v["data"].clone())
}

/// Polls `f` every 250 ms until it returns true, or fails after `timeout`.
pub fn wait_until(
    timeout: Duration,
    mut f: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("timed out after {timeout:?}")))
}

/// The workspace's dashboards.
pub fn dashboards() -> anyhow::Result<Vec<(PathBuf, serde_json::Value)>> {
    let dir = workspace_root().join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let v = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            out.push((path, v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The master key the test LiteLLM proxy wants (sent by the client as its API key).
pub const LITELLM_KEY: &str = "sk-sightline-test-key";

/// LiteLLM's proxy (PyPI `litellm[proxy]`, installed by `scripts/test`): a real
/// OpenAI-compatible server. Its models answer without a backend (`mock_response`):
/// `sightline-mock` with a fixed text, `sightline-ratelimited` with a 429. Returns its
/// OpenAI base URL's `host:port` once it is live.
pub fn litellm(dir: &Path) -> anyhow::Result<Running> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        "model_list:\n  - model_name: sightline-mock\n    litellm_params:\n      model: openai/sightline-mock\n      api_key: sk-none\n      mock_response: \"Your order A-1042 shipped yesterday.\"\n  - model_name: sightline-ratelimited\n    litellm_params:\n      model: openai/sightline-ratelimited\n      api_key: sk-none\n      mock_response: \"litellm.RateLimitError\"\n",
    )?;
    let port = free_port()?;
    let child = Command::new("litellm")
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_MASTER_KEY", LITELLM_KEY)
        // No network here: use the cost map LiteLLM ships.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("litellm.log"))?)
        .spawn()
        .context("cannot start litellm (pip install 'litellm[proxy]')")?;
    let running = Running {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    wait_until(Duration::from_secs(120), || {
        Ok(http_get(&running.addr, "/health/liveliness")?.0 == 200)
    })
    .with_context(|| {
        format!(
            "litellm never came up: {}",
            std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default()
        )
    })?;
    Ok(running)
}
