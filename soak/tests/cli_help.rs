//! The command line's help and its generated documents: defaults shown once, every flag
//! under a heading, examples that parse, short flags, `--version`, completions, the man
//! page, and the program's name as the user ran it.

use std::process::{Command, Output};

use clap::Parser as _;
use clap::error::ErrorKind;
use soak::cli::{self, Cli, command_for};

/// The help `args` ask for (`["soak", "tune", "--help"]`), as the program `program`, on a
/// terminal wide enough that no line wraps.
fn help(program: &str, args: &[&str]) -> String {
    let err = command_for(program)
        .term_width(1000)
        .try_get_matches_from(args)
        .expect_err("--help ends parsing");
    assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{err}");
    err.to_string()
}

/// The root command and each subcommand (but clap's `help`), built.
fn commands() -> Vec<clap::Command> {
    let mut root = command_for("soak");
    root.build();
    let mut all = vec![root.clone()];
    all.extend(
        root.get_subcommands()
            .filter(|c| c.get_name() != "help")
            .cloned(),
    );
    all
}

/// The subcommands `soak help` lists, and the ones with examples.
const SUBCOMMANDS: &[&str] = &[
    "report",
    "compare",
    "tune",
    "crash-test",
    "watch",
    "completions",
    "man",
];

/// Arguments that take a value and have no default: what they name must be given.
const NO_DEFAULT: &[&str] = &[
    "config",
    "preset",
    "thresholds",
    "base",
    "candidate",
    "shell",
];

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_none_or(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue
                | clap::ArgAction::Help
                | clap::ArgAction::HelpLong
                | clap::ArgAction::HelpShort
                | clap::ArgAction::Version
        )
}

#[test]
fn every_value_flag_shows_its_default_exactly_once() {
    for cmd in commands() {
        let mut shown = 0;
        for arg in cmd.get_arguments().filter(|a| takes_value(a)) {
            let id = arg.get_id().as_str();
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let in_text = help.matches("[default:").count();
            let by_clap = usize::from(
                !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set(),
            );
            let times = in_text + by_clap;
            let want = usize::from(!NO_DEFAULT.contains(&id));
            assert_eq!(
                times,
                want,
                "{} --{id}: default shown {times} times: {help:?}",
                cmd.get_name()
            );
            shown += times;
        }
        // And so in the rendered help: no default printed twice, none lost.
        let args: Vec<&str> = if cmd.get_name() == "soak" {
            vec!["soak", "--help"]
        } else {
            vec!["soak", cmd.get_name(), "--help"]
        };
        let text = help("soak", &args);
        assert_eq!(
            text.matches("[default:").count(),
            shown,
            "soak {}:\n{text}",
            cmd.get_name()
        );
    }
}

#[test]
fn the_scenario_defaults_shown_are_the_default_scenario() {
    // Every default that is a value (not `off` or `all`) parses back, as typed, into the
    // default scenario's value.
    let mut args = vec!["soak".to_owned()];
    for (id, value) in cli::scenario_defaults() {
        if value == "off" || value == "all" {
            continue;
        }
        args.push(format!("--{}", id.replace('_', "-")));
        args.push(value);
    }
    let cli = Cli::try_parse_from(&args).expect("the defaults shown parse");
    let s = cli.scenario;
    let c = runlog::ScenarioConfig::default();
    let us = |d: Option<std::time::Duration>| d.map(|d| d.as_micros() as u64);
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    assert_eq!(s.duration.map(|d| d.as_secs_f64()), Some(c.duration_s));
    assert_eq!(s.producers, Some(c.producers));
    assert_eq!(s.payload.as_deref(), Some(c.payload.as_str()));
    assert_eq!(s.rate.map(|r| r.per_second()), Some(c.rate_per_sec));
    assert_eq!(us(s.backoff), Some(c.backoff_us));
    assert_eq!(us(s.consumer_delay), Some(c.consumer_delay_us));
    assert_eq!(
        us(s.consumer_cost_per_kib),
        Some(c.consumer_cost_per_kib_us)
    );
    assert_eq!(us(s.consumer_jitter), Some(c.consumer_jitter_us));
    assert_eq!(ms(s.stall_for), Some(c.consumer_stall_for_ms));
    assert_eq!(us(s.interval), Some(c.interval_us));
    assert_eq!(us(s.interval_jitter), Some(c.interval_jitter_us));
    assert_eq!(s.max_batch_bytes, Some(cli::Limit(c.max_batch_bytes)));
    assert_eq!(s.max_batch_items, Some(cli::Limit(c.max_batch_items)));
    assert_eq!(s.max_buffered_bytes, Some(c.max_buffered_bytes));
    assert_eq!(s.policy, Some(cli::PolicyArg::Reject));
    assert_eq!(c.policy, runlog::Policy::Reject);
    assert_eq!(us(s.block_timeout), Some(c.block_timeout_us));
    assert_eq!(s.partitions, Some(c.partitions));
    assert_eq!(ms(s.sample_every), Some(c.sample_every_ms));
    assert_eq!(s.seed, Some(c.seed));
    assert_eq!(s.target, Some(cli::TargetArg::Dispatcher));
    assert_eq!(c.target, runlog::TargetKind::Dispatcher);
    assert_eq!(ms(s.drain_timeout), Some(c.drain_timeout_ms));
    assert_eq!(
        (c.consumer_stall_every_ms, c.cpus),
        (None, None),
        "shown as off, all"
    );
    let text = help("soak", &["soak", "--help"]);
    for shown in [
        "[default: 60s]",
        "[default: 32]",
        "[default: 32KiB]",
        "[default: 64MiB]",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
}

#[test]
fn every_flag_is_under_a_heading() {
    let run_headings = [
        "Run",
        "Load",
        "Payload",
        "Consumer",
        "Dispatcher limits",
        "Output",
        "Export",
    ];
    for cmd in commands() {
        for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue; // clap's own, under "Options" as everywhere
            }
            assert!(
                arg.get_help_heading().is_some(),
                "{} --{id} has no heading",
                cmd.get_name()
            );
        }
    }
    let text = help("soak", &["soak", "--help"]);
    let mut at = 0;
    for heading in run_headings {
        let found = text[at..]
            .find(&format!("\n{heading}:\n"))
            .unwrap_or_else(|| panic!("{heading}: missing or out of order:\n{text}"));
        at += found + 1;
    }
    let tune = help("soak", &["soak", "tune", "--help"]);
    assert!(
        tune.contains("\nTuning:\n") && tune.contains("\nLoad:\n"),
        "{tune}"
    );
    let compare = help("soak", &["soak", "compare", "--help"]);
    assert!(compare.contains("\nComparison:\n"), "{compare}");
    assert!(text.contains("\nDisk tier:\n"), "{text}");
    let crash = help("soak", &["soak", "crash-test", "--help"]);
    assert!(
        crash.contains("\nCrash test:\n") && crash.contains("\nDisk tier:\n"),
        "{crash}"
    );
}

#[test]
fn examples_are_in_the_help_and_parse() {
    for program in ["soak", "cargo soak"] {
        let root = help(program, &["soak", "--help"]);
        assert!(root.contains("\nExamples:\n"), "{root}");
        assert!(
            root.contains(&format!("\n  {program} --preset quick")),
            "{root}"
        );
        for sub in [
            "tune",
            "crash-test",
            "compare",
            "report",
            "export",
            "watch",
            "completions",
            "man",
        ] {
            let text = help(program, &["soak", sub, "--help"]);
            let examples = text
                .split("\nExamples:\n")
                .nth(1)
                .unwrap_or_else(|| panic!("soak {sub}: no examples:\n{text}"));
            let lines: Vec<&str> = examples
                .lines()
                .filter_map(|l| l.strip_prefix("  "))
                .filter(|l| !l.starts_with(' '))
                .collect();
            assert!(!lines.is_empty(), "soak {sub}: {examples}");
            for line in lines {
                let args = line
                    .strip_prefix(program)
                    .unwrap_or_else(|| panic!("{line:?} does not start with {program:?}"));
                parses(args);
            }
        }
    }
}

/// `args` (what follows the program's name in an example) parse, up to a redirection.
fn parses(args: &str) {
    let mut argv = vec!["soak".to_owned()];
    for word in args.split_whitespace() {
        if matches!(word, ">" | ">>" | "&&" | "|") {
            break;
        }
        argv.push(word.trim_matches('\'').to_owned());
    }
    if let Err(err) = command_for("soak").try_get_matches_from(&argv) {
        panic!("the example `soak{args}` does not parse: {err}");
    }
}

#[test]
fn short_flags_parse() {
    let cli =
        Cli::try_parse_from(["soak", "-d", "5s", "-p", "4", "-o", "x", "-q"]).expect("parses");
    assert_eq!(
        cli.scenario.duration,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(cli.scenario.producers, Some(4));
    assert_eq!(cli.out.as_deref(), Some(std::path::Path::new("x")));
    assert!(cli.quiet);
    let cli = Cli::try_parse_from(["soak", "tune", "-d", "5s", "-p", "4", "-o", "x", "-q"])
        .expect("parses");
    assert!(matches!(
        cli.command,
        Some(cli::Command::Tune { quiet: true, ref out, ref scenario, .. })
            if out.as_deref() == Some(std::path::Path::new("x")) && scenario.producers == Some(4)
    ));
    let cli = Cli::try_parse_from(["soak", "compare", "a", "b", "-o", "c.html"]).expect("parses");
    assert!(matches!(
        cli.command,
        Some(cli::Command::Compare { ref output, .. })
            if output.as_deref() == Some(std::path::Path::new("c.html"))
    ));
    // A short flag refuses a bad value as the long one does, naming it.
    let err = Cli::try_parse_from(["soak", "-p", "many"]).unwrap_err();
    assert!(err.to_string().contains("--producers"), "{err}");
}

#[test]
fn value_names_follow_one_scheme() {
    let text = help("soak", &["soak", "--help"]);
    for (flag, name) in [
        ("--duration", "<DURATION>"),
        ("--backoff", "<DURATION>"),
        ("--producers", "<N>"),
        ("--rate", "<RATE>"),
        ("--max-buffered-bytes", "<SIZE>"),
        ("--out", "<DIR>"),
        ("--config", "<PATH>"),
    ] {
        assert!(
            text.contains(&format!("{flag} {name}")),
            "{flag} {name}:\n{text}"
        );
    }
}

fn soak_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_soak"));
    cmd.stdin(std::process::Stdio::null());
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_names_the_git_revision() {
    let out = soak_bin().arg("--version").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let line = stdout(&out);
    let rev = line
        .trim()
        .strip_prefix(&format!("soak {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    let rev = rev.strip_suffix("-dirty").unwrap_or(rev);
    assert!(
        rev == "unknown" || (rev.len() >= 7 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "{line:?}"
    );
    assert_eq!(cli::VERSION, line.trim().trim_start_matches("soak "));
}

#[test]
fn completions_cover_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = soak_bin()
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let script = stdout(&out);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        assert!(script.contains("duration"), "{shell}: no --duration");
    }
    let out = soak_bin()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));
}

#[test]
fn the_man_page_is_roff_with_a_title() {
    let out = soak_bin().arg("man").output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    // clap_mangen opens with the two-line definition of the apostrophe string, then `.TH`.
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(first.starts_with(".TH soak 1"), "{first:?}");
    assert!(
        page.contains(".SH NAME") && page.contains(".SH OPTIONS"),
        "{page}"
    );
    assert!(page.contains("Examples:"), "{page}");
}

/// `soak report DIR` on a directory that is not there: refused by soak's own message.
fn refused_report(cmd: &mut Command) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let out = cmd
        .args(["report", missing.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn messages_name_the_program_as_it_was_run() {
    // Run directly: `soak`, in soak's messages and in clap's usage lines.
    let direct = refused_report(soak_bin().env_remove("CARGO"));
    assert!(direct.starts_with("soak report: "), "{direct}");
    let out = soak_bin()
        .env_remove("CARGO")
        .arg("--bogus")
        .output()
        .expect("runs");
    assert!(
        stderr(&out).contains("Usage: soak [OPTIONS]"),
        "{}",
        stderr(&out)
    );

    // Through cargo (`cargo soak`: CARGO set, the binary in target/).
    let cargo = refused_report(soak_bin().env("CARGO", "/usr/bin/cargo"));
    assert!(cargo.starts_with("cargo soak report: "), "{cargo}");
    let out = soak_bin()
        .env("CARGO", "/usr/bin/cargo")
        .arg("--bogus")
        .output()
        .expect("runs");
    assert!(
        stderr(&out).contains("Usage: cargo soak [OPTIONS]"),
        "{}",
        stderr(&out)
    );

    // A copy outside any target directory is `soak`, CARGO or not.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("soak");
    std::fs::copy(env!("CARGO_BIN_EXE_soak"), &copy).expect("copy");
    let copied = refused_report(Command::new(&copy).env("CARGO", "/usr/bin/cargo"));
    assert!(copied.starts_with("soak report: "), "{copied}");
}

#[test]
fn help_wraps_to_the_terminal() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["tune", "--help"],
        &["compare", "-h"],
    ] {
        let out = soak_bin()
            .env("COLUMNS", "60")
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 60).collect();
        assert!(
            long.is_empty(),
            "soak {args:?}: lines over 60 columns: {long:#?}"
        );
    }
}
