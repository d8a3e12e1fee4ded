//! `soak crash-test`: the built binary kills its own children and proves nothing accepted
//! was lost; without write-ahead it must catch the loss; bad input is refused (exit 2).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The counts of the `lost N, duplicated M, left on disk K` line: N and M.
fn lost_and_duplicated(text: &str) -> (u64, u64) {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("lost "))
        .unwrap_or_else(|| panic!("no `lost N, duplicated M` line in:\n{text}"));
    let number = |s: &str| -> u64 {
        s.replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("{s:?} in {line:?}"))
    };
    let (lost, duplicated) = line
        .strip_prefix("lost ")
        .and_then(|rest| rest.split_once(", duplicated "))
        .unwrap_or_else(|| panic!("{line:?}"));
    let duplicated = duplicated
        .split_once(", left on disk ")
        .map_or(duplicated, |(duplicated, _)| duplicated);
    (number(lost), number(duplicated))
}

/// The figure after `label` on its line (`accepted     37,422 events`).
fn figure(text: &str, label: &str) -> u64 {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{text}"));
    let word = line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default();
    word.trim_end_matches(',')
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{line:?}"))
}

fn crash_test(out: &Path, extra: &[&str]) -> std::process::Output {
    let out = path(out);
    let mut args = vec!["crash-test", "--out", &out];
    args.extend_from_slice(extra);
    run(&args, Duration::from_secs(180))
}

#[test]
fn killed_write_ahead_runs_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = crash_test(tmp.path(), &["--kills", "3", "--seed", "5"]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(text.starts_with("soak crash-test: PASS"), "{text}");
    assert_eq!(lost_and_duplicated(&text).0, 0, "{text}");
    let accepted = figure(&text, "accepted");
    let delivered = figure(&text, "delivered");
    assert!(accepted > 0 && delivered >= accepted, "{text}");
    for k in 1..=3 {
        assert!(err.contains(&format!("kill {k} of 3: SIGKILL ")), "{err}");
    }
    assert!(text.contains("3 SIGKILLs"), "{text}");
    assert!(
        text.contains("(seed 5,") && text.contains("write-ahead)"),
        "{text}"
    );
    // The evidence: the children's scenario, their logs and runs, the ids.
    let work = std::fs::read_dir(tmp.path())
        .expect("out")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("crash-"))
        .expect("the test's directory")
        .path();
    let scenario = runlog::ScenarioConfig::from_toml_file(&work.join("scenario.toml"))
        .expect("the children's scenario");
    let spill = scenario.spill.expect("a disk tier");
    assert!(spill.write_ahead && spill.dir == work.join("spill"));
    assert_eq!(
        std::fs::read_dir(work.join("logs")).expect("logs").count(),
        4
    );
    let last = runlog::RunDir::resolve_latest(&work.join("runs")).expect("the last run");
    let results = runlog::read_results(&last.results_path()).expect("its record");
    assert_eq!(results.spill.expect("its disk tier").left_on_disk, 0);
}

#[test]
fn the_same_seed_kills_at_the_same_moments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let moments = |dir: &str| {
        let out = crash_test(&tmp.path().join(dir), &["--kills", "2", "--seed", "9"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .find(|l| l.trim_start().starts_with("kills"))
            .expect("the kills line")
            .to_owned()
    };
    assert_eq!(moments("a"), moments("b"));
}

#[test]
fn without_write_ahead_the_loss_is_caught() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = crash_test(tmp.path(), &["--kills", "3", "--no-write-ahead"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.starts_with("soak crash-test: FAIL"), "{text}");
    let (lost, _) = lost_and_duplicated(&text);
    assert!(lost > 0, "{text}");
    assert!(text.contains("first lost   run "), "{text}");
    assert!(text.contains("no write-ahead"), "{text}");
}

#[test]
fn bad_input_is_refused_before_anything_is_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let leftover = tmp.path().join("leftover");
    {
        // A disk tier holding an earlier run's events: their ids are not the test's.
        use dispatcher::spill::Spill;
        let (mut log, _) = Spill::new(&leftover).open().expect("opens");
        log.append(b"an earlier event").expect("appends");
    }
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--kills".into(), "0".into()],
            vec!["'0'".into(), "--kills".into(), "1..=1000".into()],
        ),
        (
            vec!["--kills".into(), "1001".into()],
            vec!["'1001'".into(), "1..=1000".into()],
        ),
        (
            vec!["--spill-dir".into(), path(&file)],
            vec![path(&file), "is a file".into()],
        ),
        (
            vec!["--spill-dir".into(), path(&leftover)],
            vec![path(&leftover), "holds 1 event an earlier run left".into()],
        ),
        (
            vec!["--target".into(), "crossbeam".into()],
            vec!["--target crossbeam".into()],
        ),
        (
            vec!["--max-spill-bytes".into(), "0".into()],
            vec!["--max-spill-bytes 0".into()],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["crash-test".to_owned(), "--out".into(), path(&out)];
        all.extend(args.iter().cloned());
        let run = run(&refs(&all), Duration::from_secs(30));
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
        for needle in &needles {
            assert!(
                err.contains(needle.as_str()),
                "{args:?}: no {needle:?} in {err}"
            );
        }
        assert!(!out.exists(), "{args:?} created {}", out.display());
    }
}
