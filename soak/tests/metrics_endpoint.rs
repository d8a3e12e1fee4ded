//! `cargo soak --metrics-addr`: a real run serves every exported metric in
//! the Prometheus text format, labelled with its run id, scenario and host.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use soak::exporter::{DISPATCHER_METRIC_NAMES, METRIC_NAMES, is_exported};

/// One `GET /metrics`; `None` if nothing answers.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: soak\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}

/// `(name, labels)` of every sample line.
fn series(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = line[end..]
                .strip_prefix('{')
                .and_then(|rest| rest.split_once('}'))
                .map_or("", |(labels, _)| labels);
            (line[..end].to_owned(), labels.to_owned())
        })
        .collect()
}

#[test]
fn a_run_serves_every_exported_metric_while_it_lasts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_soak"))
        // Run directly, not through cargo: the messages name the program `soak`.
        .env_remove("CARGO")
        .args(["--preset", "quick", "--duration", "3s", "--producers", "4"])
        .args(["--sample-every", "250ms", "--no-tui", "-q"])
        .args(["--metrics-addr", "127.0.0.1:0", "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the soak binary starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("stderr reads");
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("soak: metrics at http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the endpoint is announced first: {first:?}"))
        .parse()
        .expect("a socket address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // Scrape until every sample metric is there (the first sample comes after 250 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = Vec::new();
    while Instant::now() < deadline {
        if let Some(text) = scrape(addr) {
            served = series(&text);
            let names: BTreeSet<&str> = served.iter().map(|(n, _)| n.as_str()).collect();
            if METRIC_NAMES.iter().all(|n| names.contains(n)) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().expect("the run ends");
    let stderr = rest.join().expect("stderr reader");
    assert!(status.success(), "{stderr}");

    let names: BTreeSet<&str> = served.iter().map(|(n, _)| n.as_str()).collect();
    for name in &METRIC_NAMES {
        assert!(names.contains(name), "{name} not served; got {names:?}");
    }
    for name in &names {
        assert!(
            is_exported(name),
            "{name} is served but not listed as exported"
        );
    }
    let dispatcher: Vec<_> = DISPATCHER_METRIC_NAMES
        .iter()
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(
        dispatcher.is_empty(),
        "the dispatcher's own metrics are missing: {dispatcher:?}"
    );

    let run = runlog::RunDir::resolve_latest(dir.path()).expect("the run's directory");
    let results = runlog::read_results(&run.results_path()).expect("results.json");
    let run_id = format!("run_id=\"{}\"", results.run_id);
    for (name, labels) in &served {
        assert!(labels.contains(&run_id), "{name}{{{labels}}}");
        assert!(labels.contains("scenario=\"quick\""), "{name}{{{labels}}}");
        assert!(labels.contains("host=\""), "{name}{{{labels}}}");
    }
    assert!(scrape(addr).is_none(), "the endpoint stops with the run");
}

#[test]
fn an_address_that_cannot_be_listened_on_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args([
            "--duration",
            "1s",
            "--no-tui",
            "--metrics-addr",
            &addr,
            "--out",
        ])
        .arg(dir.path())
        .output()
        .expect("the soak binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path())
            .expect("out dir")
            .next()
            .is_none(),
        "no run directory is left behind"
    );
}
