//! A broker that freezes mid-run (issue 15 item 2), with a real `nats-server` (CI installs
//! Debian's). The test says it is skipped when the server is missing, unless
//! `METRONOME_REQUIRE_NATS=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use runlog::{EventKind, Status};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        signal(self.0.id(), Signal::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(store: &std::path::Path) -> Option<(Server, u16)> {
    let port = listen_port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(_) if std::env::var_os("METRONOME_REQUIRE_NATS").is_none() => {
            eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        Err(err) => panic!("nats-server: {err}"),
    };
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((server, port))
}

#[test]
fn item02_a_broker_that_freezes_is_named_and_every_event_is_accounted_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((server, port)) = nats_server(&dir.path().join("js")) else {
        return;
    };
    let out_dir = path(&dir.path().join("runs"));
    let url = format!("nats://127.0.0.1:{port}");
    let child = spawn(&[
        "--sink",
        &url,
        "--duration",
        "3s",
        "--drain-timeout",
        "1s",
        "--producers",
        "2",
        "--sample-every",
        "250ms",
        "--no-tui",
        "-q",
        "--out",
        &out_dir,
    ]);
    let run = wait_for_samples(std::path::Path::new(&out_dir), 2, Duration::from_secs(30));
    signal(server.0.id(), Signal::SIGSTOP);
    let out = finish(child, Duration::from_secs(60));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let r = runlog::read_results(&run.results_path()).expect("results");
    let (t, d) = (&r.totals, &r.drain);
    assert!(t.delivered > 0, "delivered before the freeze");
    assert_eq!(
        t.accepted,
        t.delivered + t.dropped + d.undelivered + d.in_flight + d.failed,
        "{:#?}",
        r.assessment
    );
    assert!(
        d.in_flight + d.failed + d.undelivered > 0,
        "the freeze left events behind"
    );
    let notes = r.assessment.correctness.notes.join("\n");
    assert!(!notes.contains("lost events"), "{notes}");
    assert!(
        !notes.contains("latencies recorded"),
        "every worker's latencies merged: {notes}"
    );
    assert!(notes.contains(&url), "the sink is named: {notes}");
    assert_ne!(r.assessment.correctness.status, Status::Fail, "{notes}");
    assert!(
        r.events.iter().any(
            |e| matches!(&e.kind, EventKind::Warning { message } if message.starts_with("sink:"))
        ),
        "{:?}",
        r.events
    );
}
