//! Driving the real `soak` binary: spawn it, wait for it with a limit, signal it.
#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test (`SOAK_BIN` overrides it, to run these tests against another build).
pub fn bin() -> PathBuf {
    std::env::var_os("SOAK_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_soak")), PathBuf::from)
}

/// The signals the soak stops on. Every soak the tests start has them at their
/// default disposition, whatever the test runner inherited: the soak leaves a signal
/// ignored at its start ignored (`nohup`), and a shell without job control starts its
/// background commands with `SIGINT` ignored. A test that wants one ignored says so.
pub const DEFAULT_SIGNALS: &str = "--default-signal=INT,TERM,HUP";

/// `soak ARGS` with stdin closed and stdout/stderr captured, its stop signals at
/// their defaults (see [`DEFAULT_SIGNALS`]).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new("env");
    command
        .arg(DEFAULT_SIGNALS)
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts `soak ARGS`.
pub fn spawn(args: &[&str]) -> Child {
    command(args).spawn().expect("the soak binary starts")
}

/// Runs `soak ARGS` to the end, killing it (and failing) after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    finish(spawn(args), limit)
}

/// `--duration DURATION --producers 2 --no-tui --sample-every 200ms --out OUT EXTRA…`:
/// a small run sampled often, as arguments.
pub fn small_run(duration: &str, out: &str, extra: &[&str]) -> Vec<String> {
    [
        "--duration",
        duration,
        "--producers",
        "2",
        "--no-tui",
        "--sample-every",
        "200ms",
        "--out",
        out,
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect()
}

/// A small run long enough (30 s) to be ended by a signal.
pub fn long_run(out: &str, extra: &[&str]) -> Vec<String> {
    small_run("30s", out, extra)
}

/// The arguments as `&str`, for [`spawn`] and [`run`].
pub fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A copy of a reports fixture run directory (`reports/tests/fixtures/NAME`) in `into`.
pub fn fixture(name: &str, into: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reports/tests/fixtures")
        .join(name);
    let to = into.join(name);
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    to
}

/// A one-second run of 2 producers, sampled every 250 ms, into `out`, with `extra`
/// arguments; killed (and failed) after a minute.
pub fn one_second_run(out: &Path, extra: &[&str]) -> Output {
    one_second(out, true, extra)
}

/// [`one_second_run`] without `-q`: its progress lines go to stderr.
pub fn one_second_run_with_progress(out: &Path, extra: &[&str]) -> Output {
    one_second(out, false, extra)
}

fn one_second(out: &Path, quiet: bool, extra: &[&str]) -> Output {
    let out = path(out);
    let mut args = vec![
        "--duration",
        "1s",
        "--producers",
        "2",
        "--sample-every",
        "250ms",
        "--no-tui",
    ];
    if quiet {
        args.push("-q");
    }
    args.extend(["--out", &out]);
    args.extend_from_slice(extra);
    run(&args, Duration::from_secs(60))
}

/// Arguments under which a run's memory (64 KiB) cannot keep up: a consumer that takes
/// 5 ms per 4 KiB batch, at 20k events a second.
pub const OVERFLOWING: [&str; 8] = [
    "--max-buffered-bytes",
    "64KiB",
    "--max-batch-bytes",
    "4KiB",
    "--consumer-delay",
    "5ms",
    "--rate",
    "20k/s",
];

/// [`OVERFLOWING`], a disk tier of 16 MiB in `spill` to take the overflow, then `extra`.
pub fn spilling<'a>(spill: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = OVERFLOWING.to_vec();
    args.extend(["--spill-dir", spill, "--max-spill-bytes", "16MiB"]);
    args.extend_from_slice(extra);
    args
}

/// Waits for `child` to end within `limit`; kills it and fails the test if it does not.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let status = wait(&mut child, limit);
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut err);
    }
    let Some(status) = status else {
        panic!(
            "soak did not end within {limit:?}; stderr:\n{}",
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: out,
        stderr: err,
    }
}

/// The exit status, or `None` (after killing it) when `child` outlives `limit`.
pub fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).expect("signal delivered");
}

/// The pid of the `soak` process whose arguments include `marker` (a run under
/// `script(1)`, whose own pid is script's).
pub fn pid_of(marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_soak = args.first().is_some_and(|a| a.ends_with(b"soak"));
            let named = args.iter().any(|a| a == &marker.as_bytes());
            (is_soak && named).then_some(pid)
        })
}

/// Runs `command` (a shell command line) under `script(1)`, which gives it a terminal;
/// the script's stdin is piped (keys for the dashboard), its stdout (what the terminal
/// received) piped when `screen` is asked for, else discarded.
pub fn under_script(command: &str, screen: bool) -> Child {
    let out = || {
        if screen {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    Command::new("env")
        .args([DEFAULT_SIGNALS, "script", "-qfec", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(out())
        .stderr(out())
        .spawn()
        .expect("script(1) runs (util-linux)")
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The run directory `latest` points at under `base`, once it exists.
pub fn latest(base: &Path, limit: Duration) -> runlog::RunDir {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(dir) = runlog::RunDir::resolve_latest(base) {
            return dir;
        }
        assert!(
            Instant::now() < deadline,
            "no run directory under {}",
            base.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the run under `base` has written `n` samples; returns its directory.
pub fn wait_for_samples(base: &Path, n: usize, limit: Duration) -> runlog::RunDir {
    let deadline = Instant::now() + limit;
    let dir = latest(base, limit);
    loop {
        let count = runlog::read_samples(&dir.samples_path()).map_or(0, |log| log.samples.len());
        if count >= n {
            return dir;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} samples in {}",
            dir.path().display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the run's samples.jsonl holds a `drain` phase event.
pub fn draining(dir: &runlog::RunDir) -> bool {
    runlog::read_samples(&dir.samples_path()).is_ok_and(|log| {
        log.events
            .iter()
            .any(|e| matches!(&e.kind, runlog::EventKind::Phase { name } if name == "drain"))
    })
}

/// A temporary directory as a `&str` path.
pub fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// A loopback port for a server a test starts (nats-server, prometheus, the
/// soak's `--metrics-addr`): free now, and below the kernel's ephemeral range,
/// so no outgoing connection (a scrape, a client) can take it as its source
/// port before the server binds it. Each call in a process gives another port.
pub fn listen_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    assert!(
        low > 11_000,
        "the ephemeral range starts at {low}: no room below it"
    );
    let span = low - 10_000;
    // Spread processes apart by pid, then step through the span within one.
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + start.wrapping_add(step.wrapping_mul(101)) % span;
        let port = u16::try_from(port).expect("below the ephemeral range");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {low}");
}
