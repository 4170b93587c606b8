//! `sightline --help` lists every command and the global flags with their environment
//! variables, and every command answers `--help` with its usage and its own flags.

use std::process::Command;

/// The commands `sightline` has; the help must list exactly these.
const COMMANDS: [&str; 11] = [
    "demo",
    "mcp-server",
    "schema",
    "check-config",
    "redact",
    "tail",
    "session",
    "stats",
    "verify",
    "replay",
    "ingest",
];

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .env_remove("SIGHTLINE_CONFIG")
        .env_remove("SIGHTLINE_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sightline {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The command names of the help's `Commands:` section, in order, without clap's `help`.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A command line starts with two spaces and its name; a wrapped description line
        // starts with more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_cli_documents_its_commands() {
    let top = help(&["--help"]);
    for needle in [
        "--config",
        "SIGHTLINE_CONFIG",
        "--data-dir",
        "SIGHTLINE_DATA_DIR",
    ] {
        assert!(top.contains(needle), "help lacks {needle}:\n{top}");
    }
    let mut listed = listed_commands(&top);
    assert_eq!(
        listed.len(),
        COMMANDS.len(),
        "help lists {listed:?}:\n{top}"
    );
    listed.sort();
    let mut expected = COMMANDS.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(listed, expected, "help:\n{top}");

    // Every command's own help: its usage line, the global flags, and the flags it promises.
    for command in COMMANDS {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains(&format!("Usage: sightline {command}")),
            "{command} --help has no usage line:\n{text}"
        );
        for needle in ["--config", "--data-dir"] {
            assert!(
                text.contains(needle),
                "{command} --help lacks {needle}:\n{text}"
            );
        }
        let flags: &[&str] = match command {
            "demo" => &["--duration", "--agents", "--rate"],
            "redact" => &["--policy"],
            "tail" => &[
                "--follow", "--lines", "--since", "--until", "--kind", "--agent", "--format",
            ],
            "session" => &[
                "CLASS/NAME",
                "--at",
                "--since",
                "--until",
                "--kind",
                "--format",
            ],
            "stats" => &[
                "--top", "--since", "--until", "--kind", "--agent", "--format",
            ],
            "verify" => &["--archive", "--format"],
            "replay" => &["--to", "--since", "--until", "--kind", "--agent"],
            "ingest" => &["--skip-invalid"],
            _ => &[],
        };
        for flag in flags {
            assert!(
                text.contains(flag),
                "{command} --help lacks {flag}:\n{text}"
            );
        }
    }
}

#[test]
fn the_command_list_is_read_from_the_help_as_clap_prints_it() {
    let help = "Observability.\n\nUsage: sightline [OPTIONS] <COMMAND>\n\nCommands:\n  demo          Run a fleet\n                and summarize\n  mcp-server    Serve\n  help          Print this message\n\nOptions:\n  --config <FILE>\n";
    assert_eq!(listed_commands(help), ["demo", "mcp-server"]);
}
