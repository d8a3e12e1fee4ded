//! `cargo soak --sink`: refused before anything runs when the broker is not
//! there or the scenario cannot use it. (A run into a real NATS server is
//! `scripts/nats-prometheus-e2e.sh`.)

use std::process::{Command, Output};

fn soak(args: &[&str], out: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .args(["--duration", "1s", "--no-tui", "--out"])
        .arg(out)
        .output()
        .expect("the soak binary runs")
}

fn assert_usage_error(out: &Output, dir: &std::path::Path, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("--sink") && stderr.contains(says),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir).expect("out dir").next().is_none(),
        "no run directory is left behind"
    );
}

#[test]
fn a_broker_that_is_not_there_is_a_usage_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = soak(&["--sink", &url], dir.path());
    assert_usage_error(&out, dir.path(), &url);
}

#[test]
fn the_channel_reference_has_no_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = soak(
        &["--sink", "nats://127.0.0.1:1", "--target", "channel"],
        dir.path(),
    );
    assert_usage_error(&out, dir.path(), "--target channel");
}
