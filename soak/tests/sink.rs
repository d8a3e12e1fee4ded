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

/// A TCP listener that accepts connections and then says nothing (or `greeting`), held
/// open for the test's length.
fn silent_listener(greeting: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(40);
        while std::time::Instant::now() < until {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(greeting);
                held.push(stream);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    (port, handle)
}

#[test]
fn item09_a_server_that_does_not_speak_nats_is_refused_in_bounded_time() {
    for greeting in [&b""[..], &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]] {
        let (port, _listener) = silent_listener(greeting);
        let url = format!("nats://127.0.0.1:{port}");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_soak"))
            .args(["--sink", &url, "--duration", "1s", "--no-tui", "--out"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("soak starts");
        let limit = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > limit {
                let _ = child.kill();
                panic!("soak --sink {url} hung on a server that does not speak NATS");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("output");
        assert_eq!(status.code(), Some(2));
        assert_usage_error(&out, dir.path(), &url);
    }
}
