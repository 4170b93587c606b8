//! `sightline redact`: apply a redaction policy to a JSONL archive, for sharing it safely.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sightline_event::{Event, RedactionSummary};
use sightline_pipeline::Config;
use sightline_redact::KeySource;

/// Flags of `sightline redact`.
#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    /// The policy to apply: a built-in (`default`, `archive`, `otlp`, `metrics`, `none`) or a
    /// `[policies.<name>]` table of the config.
    #[arg(long, default_value = "default")]
    policy: String,
    /// Count and skip malformed lines instead of stopping at the first one.
    #[arg(long)]
    skip_invalid: bool,
    /// Sightline JSONL to read; standard input when absent or `-`.
    file: Option<PathBuf>,
}

/// Runs `sightline redact`.
pub fn run(config: Config, args: RedactArgs) -> anyhow::Result<ExitCode> {
    let policies = config.redactors()?;
    let redactor = policies.get(&args.policy).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown policy {:?} (known: {})",
            args.policy,
            policies.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
    };
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut lineno, mut events, mut changed, mut skipped, mut not_utf8) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if reader
            .read_until(b'\n', &mut raw)
            .context("cannot read input")?
            == 0
        {
            break;
        }
        lineno += 1;
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Not UTF-8: decode lossily (invalid bytes become U+FFFD), redact, and mark it.
        let (text, lossy) = match std::str::from_utf8(bytes) {
            Ok(t) => (std::borrow::Cow::Borrowed(t), false),
            Err(_) => (String::from_utf8_lossy(bytes), true),
        };
        let mut event = match Event::from_json_line(&text) {
            Ok(e) => e,
            Err(e) => {
                if args.skip_invalid {
                    skipped += 1;
                    continue;
                }
                out.flush().ok();
                anyhow::bail!(
                    "line {lineno}: not a Sightline event: {e} (use --skip-invalid to count and skip such lines)"
                );
            }
        };
        redactor.redact_event(&mut event);
        if lossy {
            not_utf8 += 1;
            let summary = event.redaction.get_or_insert_with(|| {
                Box::new(RedactionSummary {
                    policy: redactor.name().into(),
                    ..RedactionSummary::default()
                })
            });
            summary.truncated = true;
            *summary
                .counts
                .entry("invalid_utf8".into())
                .or_default()
                .entry("truncate".into())
                .or_default() += 1;
        }
        if event.redaction.is_some() {
            changed += 1;
        }
        events += 1;
        let mut line = Vec::with_capacity(bytes.len());
        event.write_json_line(&mut line);
        out.write_all(&line).context("cannot write output")?;
    }
    out.flush().context("cannot write output")?;
    let key = match redactor.key_source() {
        KeySource::NotNeeded => String::new(),
        KeySource::Env(v) => format!(", hash key from ${v}"),
        KeySource::File(p) => format!(", hash key from {}", p.display()),
        KeySource::Ephemeral => {
            ", hash key random for this run (set SIGHTLINE_HASH_KEY to correlate hashes across runs)".to_owned()
        }
    };
    eprintln!(
        "sightline redact: policy {:?}{key}: {events} events written, {changed} changed, {skipped} invalid lines skipped, {not_utf8} lines not UTF-8",
        redactor.name()
    );
    Ok(ExitCode::SUCCESS)
}
