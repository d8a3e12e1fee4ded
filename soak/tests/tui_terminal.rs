//! `soak --tui` where the terminal cannot host the dashboard: nothing but the summary on
//! stdout (no escape codes), one clear line on stderr, and the run still runs.

mod common;

use std::process::Stdio;
use std::time::Duration;

fn tui_run(out: &str, term: Option<&str>) -> std::process::Output {
    let args = common::small_run("600ms", out, &[]);
    let mut args = common::refs(&args);
    args.retain(|a| *a != "--no-tui");
    args.push("--tui");
    let mut command = common::command(&args);
    command.stdin(Stdio::null());
    match term {
        Some(term) => command.env("TERM", term),
        None => command.env_remove("TERM"),
    };
    common::finish(
        command.spawn().expect("soak starts"),
        Duration::from_secs(60),
    )
}

#[test]
fn tui_with_stdout_not_a_terminal_writes_no_escape_codes() {
    for term in [Some("xterm-256color"), Some("dumb"), None] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = tui_run(dir.path().to_str().expect("utf-8"), term);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "TERM={term:?}\n{stderr}");
        assert!(
            !out.stdout.contains(&0x1b),
            "escape bytes on stdout with TERM={term:?}: {stdout:?}"
        );
        assert!(!stdout.is_empty(), "the summary is still printed");
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("cannot show the dashboard"))
            .collect();
        assert_eq!(complaints.len(), 1, "one clear error\n{stderr}");
        assert!(
            complaints[0].contains("stdout is not a terminal")
                && complaints[0].contains("running without the dashboard"),
            "{stderr}"
        );
        assert!(
            !out.stderr.contains(&0x1b),
            "escape bytes on stderr: {stderr:?}"
        );
    }
}
