//! Attacks on the soak's bad-input contract through the real binary: exit 2, one line
//! naming what the user typed (the flag and value, or the scenario file and key), and
//! nothing created on disk.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// `soak ARGS --out <new dir>` must be refused (exit 2) saying every one of `says` and
/// none of `never`, creating nothing; what went wrong, if anything.
fn refusal_problem(args: &[&str], says: &[&str], never: &[&str]) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(&dir.path().join("out"));
    let mut all = args.to_vec();
    all.extend(["--no-tui", "--out", &out_dir]);
    let out = common::run(&all, LIMIT);
    let err = stderr(&out);
    if out.status.code() != Some(2) {
        return Some(format!("{args:?}: exit {:?}: {err}", out.status));
    }
    if Path::new(&out_dir).exists() {
        return Some(format!("{args:?}: created {out_dir}"));
    }
    if let Some(s) = says.iter().find(|s| !err.contains(*s)) {
        return Some(format!("{args:?}: expected {s:?} in: {err}"));
    }
    if let Some(s) = never.iter().find(|s| err.contains(*s)) {
        return Some(format!("{args:?}: the user never typed {s:?}: {err}"));
    }
    None
}

/// Asserts every refusal in `cases` is as it should be, listing every one that is not.
fn refused_all(cases: &[(&[&str], &[&str], &[&str])]) {
    let problems: Vec<String> = cases
        .iter()
        .filter_map(|(args, says, never)| refusal_problem(args, says, never))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn scenario_file(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write");
    path(&file)
}

/// `soak tune` with a budget too small for three probes is bad input: exit 2 and nothing
/// created. The exit is 2, but the `--out` directory (and its parents) is created first.
#[test]
fn attack_tune_refuses_a_small_budget_without_creating_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    for budget in ["100ms", "0s"] {
        let out_dir = dir.path().join(format!("new-{budget}")).join("deeper");
        let out = common::run(
            &["tune", "--budget", budget, "-q", "--out", &path(&out_dir)],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("--budget"), "{}", stderr(&out));
        assert!(
            !out_dir.exists() && !out_dir.parent().expect("parent").exists(),
            "--budget {budget} was refused, yet {} was created",
            out_dir.display()
        );
    }
}

/// Every flag's range error names the flag and the value typed; `--partitions` is named
/// only as the scenario key `partitions`.
#[test]
fn attack_partitions_out_of_range_names_the_flag() {
    refused_all(&[
        (&["--partitions", "0"], &["--partitions 0"], &[]),
        (&["--partitions", "257"], &["--partitions 257"], &[]),
    ]);
}

/// Values from a scenario file that the machine refuses (more cores than it has, more
/// producers per core, a device as the payload, more memory than half of it) are named
/// as flags the user never typed, not as the file and key.
#[test]
fn attack_machine_limits_from_a_scenario_file_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cpus = scenario_file(dir.path(), "cpus.toml", "duration_s = 1.0\ncpus = 65536\n");
    let producers = scenario_file(
        dir.path(),
        "producers.toml",
        "duration_s = 1.0\ncpus = 1\nproducers = 4096\n",
    );
    let payload = scenario_file(
        dir.path(),
        "payload.toml",
        "duration_s = 1.0\npayload = \"file:/dev/zero\"\n",
    );
    let memory = scenario_file(
        dir.path(),
        "memory.toml",
        "duration_s = 1.0\nmax_buffered_bytes = 1099511627776\n",
    );
    refused_all(&[
        (&["--config", &cpus], &[&cpus, "cpus"], &["--cpus"]),
        (
            &["--config", &producers],
            &[&producers, "producers"],
            &["--producers"],
        ),
        (
            &["--config", &payload],
            &[&payload, "payload"],
            &["--payload"],
        ),
        (
            &["--config", &memory],
            &[&memory, "max_buffered_bytes"],
            &["--max-buffered-bytes"],
        ),
    ]);
}

/// `soak watch` on a directory that never was a run is bad input (exit 2, as `soak
/// report` says of it at once), not a run that "was killed before it finished" (exit 1,
/// after ten seconds of waiting).
#[test]
fn attack_watch_on_a_directory_that_is_not_a_run_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("not-a-run");
    std::fs::create_dir(&empty).expect("mkdir");
    let report = common::run(&["report", &path(&empty)], LIMIT);
    assert_eq!(report.status.code(), Some(2), "{}", stderr(&report));
    let began = Instant::now();
    let out = common::run(&["watch", &path(&empty)], LIMIT);
    assert_eq!(
        out.status.code(),
        Some(2),
        "after {:.1} s: {}",
        began.elapsed().as_secs_f64(),
        stderr(&out)
    );
    assert!(!stderr(&out).contains("killed"), "{}", stderr(&out));
}

/// Held: hostile scenario files and values past every bound are refused with exit 2,
/// naming the file or flag, creating nothing, and never panicking or hanging.
#[test]
fn held_hostile_files_and_overflowing_values_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let deep = scenario_file(d, "deep.toml", &format!("x = {}", "[".repeat(200_000)));
    let binary = d.join("binary.toml");
    std::fs::write(&binary, [0xff_u8, 0xfe, 0, 1, 2, b'\n']).expect("write");
    let binary = path(&binary);
    let dup = scenario_file(d, "dup.toml", "producers = 2\nproducers = 3\n");
    let nan = scenario_file(d, "nan.toml", "duration_s = nan\n");
    let inf = scenario_file(d, "inf.toml", "duration_s = -inf\n");
    let big = scenario_file(d, "big.toml", "producers = 4294967296\n");
    let urandom = d.join("urandom.toml");
    std::os::unix::fs::symlink("/dev/urandom", &urandom).expect("symlink");
    let urandom = path(&urandom);
    refused_all(&[
        (&["--config", &deep], &[&deep], &[]),
        (&["--config", &binary], &[&binary, "UTF-8"], &[]),
        (&["--config", &dup], &[&dup, "duplicate"], &[]),
        (&["--config", &nan], &[&nan, "duration_s"], &[]),
        (&["--config", &inf], &[&inf, "duration_s"], &[]),
        (&["--config", &big], &[&big], &[]),
        (
            &["--config", &urandom],
            &[&urandom, "not a regular file"],
            &[],
        ),
        (
            &["--config", d.to_str().expect("utf-8")],
            &["not a regular file"],
            &[],
        ),
        (&["--seed", "18446744073709551616"], &["--seed"], &[]),
        (&["--duration", "1e309s"], &["--duration"], &[]),
        (&["--rate", "1e309/s"], &["--rate"], &[]),
        (
            &["--max-buffered-bytes", "18446744073709551616"],
            &["--max-buffered-bytes"],
            &[],
        ),
        (&["--max-batch-items", "0"], &["--max-batch-items 0"], &[]),
        (&["--producers", "0"], &["--producers 0"], &[]),
        (&["--cpus", "0"], &["--cpus 0"], &[]),
        (&["--sink", "nats://127.0.0.1:99999"], &["--sink"], &[]),
        (&["--payload", "file:"], &["--payload"], &[]),
        (
            &["--payload", "file:/dev/null"],
            &["not a regular file"],
            &[],
        ),
    ]);
}
