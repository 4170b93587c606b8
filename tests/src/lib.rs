//! Helpers for Sightline's end-to-end tests: finding the `sightline` binary and running it.
//!
//! The tests themselves live in `tests/tests/`, one behaviour per file, each named as a
//! sentence.
//!
//! ```no_run
//! let out = sightline_tests::sightline(&["schema"]).unwrap();
//! assert!(out.status.success());
//! ```

pub mod everything;
pub mod otlp;
pub mod real;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `sightline` binary of the same build profile as this test, built if missing.
pub fn sightline_bin() -> anyhow::Result<PathBuf> {
    // Test executables live in target/<profile>/deps/; binaries in target/<profile>/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("unexpected test binary location {}", exe.display()))?;
    let bin = profile_dir.join(format!("sightline{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "sightline", "--bin", "sightline"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(workspace_root()).status()?;
        anyhow::ensure!(status.success(), "building the sightline binary failed");
    }
    Ok(bin)
}

/// Runs `sightline` with `args`, capturing its output; no config or data dir from the
/// environment leaks in.
pub fn sightline(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(sightline_bin()?)
        .args(args)
        .env_remove("SIGHTLINE_CONFIG")
        .env_remove("SIGHTLINE_DATA_DIR")
        .output()?)
}

/// Runs `sightline` with `args`, `envs` set and `input` on its stdin, capturing its output;
/// no config or data dir from the environment leaks in.
pub fn sightline_with_stdin(
    args: &[&str],
    envs: &[(&str, &str)],
    input: &[u8],
) -> anyhow::Result<Output> {
    use std::io::Write;
    let mut child = Command::new(sightline_bin()?)
        .args(args)
        .env_remove("SIGHTLINE_CONFIG")
        .env_remove("SIGHTLINE_DATA_DIR")
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // A child that exits early closes its stdin; that is its answer, not our error.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    Ok(child.wait_with_output()?)
}

/// What a `sightline demo` run left: its output and the summary it wrote.
#[derive(Debug)]
pub struct DemoRun {
    /// Its output (the summary as text on stdout, progress on stderr).
    pub output: Output,
    /// `demo-summary.json` from the data directory.
    pub summary: serde_json::Value,
}

/// Runs `sightline demo` with `args`, its data in `data_dir` and `/metrics` on any free port
/// (the default 9464 may be taken on a shared machine), plus `global` flags (such as
/// `--config FILE`); fails unless it exits successfully, and returns what it left.
pub fn demo_run(data_dir: &Path, global: &[&str], args: &[&str]) -> anyhow::Result<DemoRun> {
    let data = data_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("data dir {} is not UTF-8", data_dir.display()))?;
    let mut all = global.to_vec();
    all.extend(["demo", "--data-dir", data, "--metrics-addr", "127.0.0.1:0"]);
    all.extend_from_slice(args);
    let output = sightline(&all)?;
    anyhow::ensure!(
        output.status.success(),
        "demo failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = serde_json::from_str(&std::fs::read_to_string(
        data_dir.join("demo-summary.json"),
    )?)?;
    Ok(DemoRun { output, summary })
}

/// A fresh, empty directory under the target dir, removed and recreated on each call.
pub fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let base = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("e2e-scratch"))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Compares `rendered` with the golden file at `path` (relative to the workspace root),
/// rewriting the file first when `SIGHTLINE_BLESS` is set.
pub fn assert_golden(path: &str, rendered: &str) {
    let path = workspace_root().join(path);
    if std::env::var_os("SIGHTLINE_BLESS").is_some() {
        std::fs::write(&path, rendered).expect("cannot write the golden file");
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} missing: run with SIGHTLINE_BLESS=1",
            path.display()
        )
    });
    assert_eq!(
        rendered,
        golden,
        "{} changed; bless it (SIGHTLINE_BLESS=1) if deliberate",
        path.display()
    );
}
