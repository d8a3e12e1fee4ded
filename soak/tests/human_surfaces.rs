//! Every human surface of the soak binary speaks the one vocabulary (`runlog::human`): no
//! raw byte count or bare large integer where a human figure belongs, and no snake_case
//! record key where a person reads. The checker is [`violations`]; each surface is
//! rendered by the real binary (or, for the dashboard's event log, by its public function)
//! and checked.

mod common;

use std::time::Duration;

use common::*;

/// Names a person types (threshold metrics, `compare --primary`): snake_case on purpose,
/// and shown as such in the help and in "known: …" lists.
const TYPED_NAMES: &[&str] = &[
    "delivered_per_sec",
    "accepted_per_sec",
    "peak_heap",
    "peak_rss",
    "peak_buffered",
    // An architecture's name, as the machine reports it.
    "x86_64",
];

/// Where `text` breaks the vocabulary, one entry per violation (empty: none).
///
/// - A bare integer of 10000 or more (`134217728`, `91309272.0`, `10000B`): counts go
///   through `human::count` or `human::grouped` (`3,192,199`), sizes through
///   `human::bytes`. Digits inside an identifier (a run id `20261205-042603-7503`, a hex
///   revision), a grouped number or a decimal fraction are not counts.
/// - A snake_case token (`max_buffered_bytes`, `interval_us`, `peak_heap_bytes`): record
///   keys are not words; the knob's display name or the flag is. [`TYPED_NAMES`] are what
///   people type and are allowed.
///
/// Exempt: what the user wrote, repeated as written: text in backticks or single quotes
/// (a scenario file's keys, a typed threshold), the value after a flag (`--cpus 100000`)
/// and after a quoted file key (`` `cpus` = 100000 ``); and tokens holding a `/` (paths,
/// URLs).
fn violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let unquoted = strip_quoted(line);
        let tokens: Vec<&str> = unquoted.split_whitespace().collect();
        let echoed = |i: usize| {
            let before = |k: usize| i.checked_sub(k).map(|j| tokens[j]);
            before(1).is_some_and(|t| t.starts_with("--") && t.len() > 2)
                || (before(1) == Some("=") && before(2) == Some(QUOTED))
        };
        for (i, token) in tokens.iter().enumerate() {
            if token.contains('/') || echoed(i) {
                continue;
            }
            let chars: Vec<char> = token.chars().collect();
            // snake_case words
            for word in token.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let snake = word.contains('_')
                    && word.split('_').all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    })
                    && word.starts_with(|c: char| c.is_ascii_lowercase());
                if snake && !TYPED_NAMES.contains(&word) {
                    found.push(format!("snake_case key `{word}` in: {line}"));
                }
            }
            // bare integers
            let mut i = 0;
            while i < chars.len() {
                if !chars[i].is_ascii_digit() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let prev = start.checked_sub(1).map(|k| chars[k]);
                let before_prev = start.checked_sub(2).map(|k| chars[k]);
                let next = chars.get(i).copied();
                let after_next = chars.get(i + 1).copied();
                let in_identifier = prev.is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    || (prev == Some('-')
                        && before_prev.is_some_and(|c| c.is_ascii_alphanumeric()))
                    || (matches!(prev, Some('.' | ','))
                        && before_prev.is_some_and(|c| c.is_ascii_digit()))
                    || next.is_some_and(|c| (c.is_ascii_alphabetic() && c != 'B') || c == '_')
                    || (next == Some('B') && after_next.is_some_and(|c| c.is_ascii_alphanumeric()))
                    || (matches!(next, Some('-' | ','))
                        && after_next.is_some_and(|c| c.is_ascii_digit()));
                let digits: String = chars[start..i].iter().collect();
                if !in_identifier && digits.parse::<u128>().is_ok_and(|n| n >= 10_000) {
                    found.push(format!("bare number {digits} in: {line}"));
                }
            }
        }
    }
    found
}

/// Stands for a quoted span in [`strip_quoted`]'s output.
const QUOTED: &str = "\u{2400}";

/// `line` with its backtick- and single-quoted spans replaced by [`QUOTED`] (an apostrophe
/// inside a word, as in "machine's", opens nothing).
fn strip_quoted(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        let opens = c == '`' || (c == '\'' && !prev.is_some_and(|p| p.is_alphanumeric()));
        if opens {
            let close = c;
            let mut quoted = String::new();
            let mut closed = false;
            for q in chars.by_ref() {
                if q == close {
                    closed = true;
                    break;
                }
                quoted.push(q);
            }
            if closed {
                out.push_str(&format!(" {QUOTED} "));
            } else {
                out.push(c);
                out.push_str(&quoted);
            }
            prev = Some(' ');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

fn assert_clean(surface: &str, text: &str) {
    let found = violations(text);
    assert!(
        found.is_empty(),
        "{surface}: {} violation(s):\n{}\n--- the surface ---\n{text}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_checker_fails_raw_figures_and_keys() {
    assert_eq!(violations("peak_heap_bytes 91309272.0").len(), 2);
    assert_eq!(violations("134217728 is out of range").len(), 1);
    assert_eq!(violations("allowed: 1..=12638101504 bytes").len(), 1);
    assert_eq!(violations("buffered 65536B").len(), 1);
    assert_eq!(violations("interval_us 10 ms -> 5 ms (tui)").len(), 1);
    assert_eq!(violations("627910 delivered, 0 evicted").len(), 1);
    assert_eq!(violations("a `key` 134217728 after a quote").len(), 1);
}

#[test]
fn the_checker_passes_the_vocabulary() {
    for ok in [
        "peak heap 87.2 MiB (budget 88.0 MiB), 723.6k/s delivered",
        "every accepted event accounted for: 3,192,199 delivered",
        "soak 20261205-042603-7503: PASS",
        "run dir      /tmp/.tmpAb_x/20261205-042603-7503",
        "e.g. --threshold 'delivered_per_sec>275.1k'",
        "unknown field `max_buffered_byte`, expected one of `duration_s`",
        "--max-buffered-bytes 99999999999999 (90.9 TiB) is out of range",
        "bad.toml: `max_buffered_bytes` = 99999999999999 (90.9 TiB) is out of range",
        "known: p50, p99, delivered_per_sec, peak_heap",
        "9999 events, a machine's 23.5 GiB, 1.246 heap bytes per buffered byte",
        "drained in 10.9 ms (deadline 5 s); soak 0.1.0 (git 5db3a1f)",
    ] {
        assert_eq!(violations(ok), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn a_run_summary_and_its_markdown_speak_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = dir.path().join("summary.md");
    let out = one_second_run(
        &dir.path().join("runs"),
        &["--threshold", "p99<5s", "--summary-md", &path(&md)],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_clean("the end-of-run summary", &stdout(&out));
    assert_clean("the run's stderr", &stderr(&out));
    assert_clean(
        "--summary-md",
        &std::fs::read_to_string(&md).expect("summary.md"),
    );
    let run = runlog::RunDir::resolve_latest(&dir.path().join("runs")).expect("the run");
    let html = std::fs::read_to_string(run.path().join("report.html")).expect("report.html");
    assert_clean("report.html", &visible_text(&html));
}

/// What a browser shows of a report: the text between tags, without scripts, styles and
/// the two tables that list the record's own keys on purpose (the scenario as a
/// scenario file spells it, and the environment).
fn visible_text(html: &str) -> String {
    let mut html = html.to_owned();
    for (open, close) in [
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<table id=\"table-config\"", "</table>"),
        ("<table id=\"table-environment\"", "</table>"),
    ] {
        while let Some(start) = html.find(open) {
            let end = html[start..]
                .find(close)
                .map_or(html.len(), |e| start + e + close.len());
            html.replace_range(start..end, "\n");
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// A run with a disk tier that spills: its summary (the disk tier line), its Markdown and
/// its progress lines.
#[test]
fn a_spilling_run_speaks_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = dir.path().join("summary.md");
    let spill = dir.path().join("spill");
    let out = one_second_run_with_progress(
        &dir.path().join("runs"),
        &spilling(&path(&spill), &["--summary-md", &path(&md)]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("\n  disk tier    "), "{summary}");
    assert_clean("the end-of-run summary with a disk tier", &summary);
    assert_clean("the progress lines with a disk tier", &stderr(&out));
    assert_clean(
        "--summary-md with a disk tier",
        &std::fs::read_to_string(&md).expect("summary.md"),
    );
}

/// `crash-test`'s progress (a line per kill) and its result.
#[test]
fn crash_test_text_speaks_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["crash-test", "--kills", "2", "--out", &path(dir.path())],
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("lost 0, duplicated "), "{text}");
    assert_clean("crash-test", &text);
    assert_clean("crash-test's progress", &stderr(&out));
}

#[test]
fn compare_text_speaks_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fixture("basic", dir.path());
    let candidate = fixture("regressed", dir.path());
    let out = run(
        &["compare", &path(&base), &path(&candidate)],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_clean("compare", &stdout(&out));
    assert_clean("compare's stderr", &stderr(&out));
}

#[test]
fn tune_text_speaks_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &[
            "tune",
            "--producers",
            "2",
            "--budget",
            "5s",
            "-q",
            "--out",
            &path(dir.path()),
        ],
        Duration::from_secs(60),
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let text = stdout(&out);
    if out.status.code() == Some(0) {
        assert!(text.contains("recommendation:"), "{text}");
    }
    assert_clean("tune", &text);
    let tuned = dir.path().join("tuned.toml");
    if tuned.exists() {
        let comments: String = std::fs::read_to_string(&tuned)
            .expect("tuned.toml")
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_clean("tuned.toml's comments", &comments);
    }
    assert_clean("tune's stderr", &stderr(&out));
}

#[test]
fn usage_errors_speak_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_key = dir.path().join("bad-key.toml");
    std::fs::write(&bad_key, "max_buffered_byte = 5\n").expect("write");
    let too_big = dir.path().join("too-big.toml");
    std::fs::write(&too_big, "max_buffered_bytes = 99999999999999\n").expect("write");
    let base = fixture("basic", dir.path());
    let cases: Vec<Vec<String>> = vec![
        vec!["--max-buffered-bytes".into(), "99999999999999".into()],
        vec!["--max-buffered-bytes".into(), "1TiB".into()],
        vec![
            "--payload".into(),
            "fixed:64KiB".into(),
            "--max-buffered-bytes".into(),
            "32KiB".into(),
        ],
        vec!["--duration".into(), "-1".into()],
        vec!["--duration".into(), "999999d".into()],
        vec!["--interval".into(), "2m".into()],
        vec!["--config".into(), path(&bad_key)],
        vec!["--config".into(), path(&too_big)],
        vec!["--threshold".into(), "p98<5ms".into()],
        vec!["--log-level".into(), "loud".into()],
        vec!["tune".into(), "--budget".into(), "1s".into()],
        vec!["--spill-dir".into(), path(&dir.path().join("no/such/dir"))],
        vec!["--spill-dir".into(), path(&bad_key)],
        vec!["--spill-dir".into(), path(dir.path())],
        vec![
            "--spill-dir".into(),
            path(&dir.path().join("spill")),
            "--max-spill-bytes".into(),
            "99999999999999".into(),
        ],
        vec![
            "--spill-dir".into(),
            path(&dir.path().join("spill")),
            "--spill-sync".into(),
            "2m".into(),
        ],
        vec!["--max-spill-bytes".into(), "64MiB".into()],
        vec!["crash-test".into(), "--kills".into(), "0".into()],
        vec!["crash-test".into(), "--spill-dir".into(), path(&bad_key)],
        vec![
            "compare".into(),
            path(&base),
            path(&base),
            "--primary".into(),
            "bogus".into(),
        ],
    ];
    for args in cases {
        let out = run(&refs(&args), Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_clean(&format!("soak {}", args.join(" ")), &stderr(&out));
    }
}

/// A record event this build does not know (a knob added later) still reads as words and
/// figures in `watch`'s event lines.
#[test]
fn watch_event_lines_speak_the_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = fixture("reconfigured", dir.path());
    let samples = run_dir.join("samples.jsonl");
    let mut text = std::fs::read_to_string(&samples).expect("samples");
    let unknown = r#"{"at_s":2.5,"kind":"reconfigure","knob":"max_flush_bytes","from":"134217728","to":"67108864","source":"tui"}"#;
    let at = text
        .find("\n{\"at_s\":3.1")
        .expect("an event to insert before");
    text.insert_str(at + 1, &format!("{unknown}\n"));
    std::fs::write(&samples, text).expect("write");
    let out = run(&["watch", &path(&run_dir)], Duration::from_secs(60));
    let events: String = stderr(&out)
        .lines()
        .chain(stdout(&out).lines())
        .filter(|l| l.contains("soak watch: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        events.contains("max buffered 64.0 MiB -> 32.0 MiB"),
        "{events}"
    );
    assert!(events.contains("128.0 MiB -> 64.0 MiB"), "{events}");
    assert_clean("watch's event lines", &events);
}

/// The dashboard's event log, reachable without a terminal through its public function.
#[test]
fn the_dashboards_event_log_speaks_the_vocabulary() {
    let event = runlog::Event::new(
        3.5,
        runlog::EventKind::Reconfigure {
            knob: "interval_us".into(),
            from: "10000".into(),
            to: "5000".into(),
            source: "control".into(),
        },
    );
    let entry = dashboards::LogEntry::from_event(&event);
    assert_clean("the dashboard's event log", &entry.text);
}
