//! A fleet's p99 through a real Prometheus (Debian's `prometheus`): two soaks run at once,
//! each serving `metronome_latency_seconds` at its own `--metrics-addr`; Prometheus scrapes
//! both (a generated config, loopback ports) and its query API answers
//! `histogram_quantile(0.99, sum by (le) (rate(metronome_latency_seconds_bucket[1m])))`
//! with the p99 of both runs' latencies together, within a bucket of the exact one merged
//! from their `latency.hlog`s. Every process is killed on the way out, also on failure.
//!
//! Without `prometheus` on PATH the test says so and passes, unless
//! `METRONOME_REQUIRE_PROMETHEUS=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use soak::exporter::LATENCY_BUCKETS_S;

/// Children killed (and reaped) when dropped: a failing test leaves no server behind.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET path` over HTTP/1.0; the body of a 200 answer.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The single value of an instant query, if it has one.
fn query(prometheus: SocketAddr, promql: &str) -> Option<f64> {
    let body = get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    )?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = json["data"]["result"].as_array()?;
    let value = result.first()?["value"][1].as_str()?;
    value.parse().ok().filter(|v: &f64| v.is_finite())
}

fn start_prometheus(dir: &Path, port: u16, targets: &[u16]) -> Child {
    let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 250ms\nscrape_configs:\n  - job_name: metronome\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("prometheus.yml");
    Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts")
}

fn start_soak(out: &Path, port: u16, consumer_delay: &str) -> Child {
    let mut child = command(&[
        "--duration",
        "3s",
        "--producers",
        "2",
        "--payload",
        "fixed:256",
        "--max-buffered-bytes",
        "512KiB",
        "--consumer-delay",
        consumer_delay,
        "--sample-every",
        "250ms",
        "--no-tui",
        "-q",
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--out",
        &path(out),
    ])
    .spawn()
    .expect("the soak starts");
    // The endpoint is announced before the run starts.
    let mut first = String::new();
    BufReader::new(child.stderr.as_mut().expect("piped"))
        .read_line(&mut first)
        .expect("stderr");
    assert!(
        first.contains(&format!("127.0.0.1:{port}/metrics")),
        "{first}"
    );
    child
}

/// Index of the bucket holding `seconds` (the first whose bound is at least it).
fn bucket(seconds: f64) -> usize {
    LATENCY_BUCKETS_S.partition_point(|&le| le < seconds)
}

/// The exact p99 of both runs together, merged from their latency logs, in seconds.
fn merged_p99(out: &Path) -> f64 {
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for base in ["a", "b"] {
        let run = runlog::RunDir::resolve_latest(&out.join(base)).expect("a run");
        for (_, _, h) in runlog::read_hlog(&run.hlog_path()).expect("latency.hlog") {
            merged.add(&h).expect("merge");
        }
    }
    merged.value_at_quantile(0.99) as f64 / 1e6
}

/// Prometheus applies its targets a few seconds after it starts: waits until it has tried
/// to scrape `targets` of them (nothing answers yet), so the soaks are scraped from their
/// start.
fn wait_until_it_scrapes(prometheus: SocketAddr, targets: usize) {
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        let list = get(prometheus, "/api/v1/targets").unwrap_or_default();
        let tried = list.matches("\"lastScrape\":\"").count()
            - list.matches("\"lastScrape\":\"0001").count();
        if tried >= targets {
            return;
        }
        assert!(
            Instant::now() < ready,
            "prometheus never tried to scrape: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many runs Prometheus holds latency for, and the fleet p99 it serves, once it has
/// both (the runs are over, so their series are stale: it looks back over the last minute).
fn fleet_p99(prometheus: SocketAddr) -> (f64, f64) {
    let both = "count(count by (run_id) (last_over_time(metronome_latency_seconds_count[1m])))";
    let fleet =
        "histogram_quantile(0.99, sum by (le) (rate(metronome_latency_seconds_bucket[1m])))";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = (query(prometheus, both), query(prometheus, fleet));
        if let (Some(runs), Some(p99)) = answer {
            if runs >= 2.0 {
                return (runs, p99);
            }
        }
        assert!(Instant::now() < deadline, "no aggregated p99: {answer:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_aggregates_the_p99_of_two_concurrent_soaks() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("METRONOME_REQUIRE_PROMETHEUS").is_none(),
            "METRONOME_REQUIRE_PROMETHEUS is set but `prometheus` is not on PATH"
        );
        eprintln!("skipped: `prometheus` is not on PATH (apt-get install prometheus)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (prom_port, a_port, b_port) = (listen_port(), listen_port(), listen_port());
    let prometheus: SocketAddr = format!("127.0.0.1:{prom_port}").parse().expect("addr");
    let mut children = Killed(vec![start_prometheus(
        dir.path(),
        prom_port,
        &[a_port, b_port],
    )]);
    wait_until_it_scrapes(prometheus, 2);
    // Two soaks at once, one with a consumer three times slower (a higher p99).
    children
        .0
        .push(start_soak(&dir.path().join("a"), a_port, "1ms"));
    children
        .0
        .push(start_soak(&dir.path().join("b"), b_port, "3ms"));
    for soak in children.0.iter_mut().skip(1) {
        let status = wait(soak, Duration::from_secs(60)).expect("the soak ends");
        assert!(status.success(), "a soak failed: {status}");
    }
    let (runs, p99) = fleet_p99(prometheus);
    assert_eq!(runs, 2.0, "both runs were scraped");
    let exact = merged_p99(dir.path());
    let (served, truth) = (bucket(p99), bucket(exact));
    assert!(
        served.abs_diff(truth) <= 1,
        "Prometheus's fleet p99 {p99:.4} s is not within a bucket of the merged {exact:.4} s"
    );
    let own = |base: &str| {
        let run = runlog::RunDir::resolve_latest(&dir.path().join(base)).expect("a run");
        runlog::read_results(&run.results_path())
            .expect("results.json")
            .latency_us
            .p99 as f64
            / 1e6
    };
    eprintln!(
        "fleet p99 from Prometheus {p99:.4} s; merged from both latency logs {exact:.4} s; the runs' own p99s {:.4} s and {:.4} s",
        own("a"),
        own("b")
    );
}
