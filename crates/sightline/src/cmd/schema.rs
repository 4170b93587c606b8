//! `sightline schema`: the JSON Schema of one event line, for tools that validate or
//! generate Sightline JSONL (`config/event.schema.json` is its committed output).

use std::process::ExitCode;

/// Runs `sightline schema`.
pub fn run() -> anyhow::Result<ExitCode> {
    print!("{}", sightline_event::json_schema_text());
    Ok(ExitCode::SUCCESS)
}
