//! The plain end-of-run summary: what a person reads when a run ends (and what `watch`
//! prints when the run it follows ends). Figures in the shared vocabulary
//! ([`crate::human`]); every line fits 80 columns (prose wraps under its label); the
//! verdict words are coloured only when the caller says so ([`crate::style`]).

use runlog::{RunDir, RunResults, Section, Status};

use crate::human;
use crate::progress::scenario_line;

/// No line of the summary is wider than this (a path longer than a line is the exception:
/// it is never broken).
pub const WIDTH: usize = 80;
/// Where the text after a label starts.
const INDENT: usize = 15;

/// The end-of-run summary of the run `r` in `dir`; the verdict words coloured when
/// `colour` (ask [`runlog::human::colour`] about the stream it goes to).
pub fn summary(r: &RunResults, dir: &RunDir, colour: bool) -> String {
    let t = &r.totals;
    let a = &r.assessment;
    let word = |status: Status| crate::style::verdict(status, &upper(status), colour);
    let mut lines = vec![
        format!("soak {}: {}", r.run_id, word(a.overall)),
        field("scenario", &scenario_line(&r.config)),
        field(
            "throughput",
            &format!(
                "{} delivered avg (min {}, max {}), {} delivered in {}, {} refused or evicted",
                human::rate(r.throughput.avg_delivered_per_sec),
                human::rate(r.throughput.min_delivered_per_sec),
                human::rate(r.throughput.max_delivered_per_sec),
                human::count(t.delivered),
                runlog::human::seconds(r.duration_s),
                runlog::human::percent(refused_pct(t)),
            ),
        ),
        field("memory", &memory_text(&r.memory)),
        field(
            "latency",
            &format!(
                "p50 {}, p99 {}, p99.9 {}, max {}",
                human::micros(r.latency_us.p50),
                human::micros(r.latency_us.p99),
                human::micros(r.latency_us.p999),
                human::micros(r.latency_us.max),
            ),
        ),
        field("drain", &drain_line(&r.drain)),
    ];
    if let Some(spill) = &r.spill {
        lines.push(field("disk tier", &disk_tier(spill)));
    }
    for (name, section) in [
        ("correctness", &a.correctness),
        ("pressure", &a.pressure),
        ("memory", &a.memory),
        ("drain", &a.drain),
    ] {
        lines.push(section_lines(name, section, &word));
    }
    lines.push(verdict_lines(a, &word));
    lines.push(field("run dir", &dir.path().display().to_string()));
    lines.join("\n")
}

/// What the disk tier did: events spilled and read back, its peak on disk against its
/// budget, what it left on disk at exit and recovered at start, fallbacks and errors.
pub(crate) fn disk_tier(s: &runlog::SpillTotals) -> String {
    let mut text = format!(
        "{} spilled, {} replayed, peak {} of {} on disk, {} left on disk at exit, {} recovered at start, {} fallbacks, {} errors",
        human::count(s.spilled),
        human::count(s.replayed),
        human::bytes(s.peak_disk_bytes),
        human::bytes(s.max_disk_bytes),
        runlog::human::grouped(s.left_on_disk),
        runlog::human::grouped(s.recovered),
        runlog::human::grouped(s.fallbacks),
        runlog::human::grouped(s.errors),
    );
    if s.torn > 0 {
        text.push_str(&format!(
            ", {} torn records cut at start",
            runlog::human::grouped(s.torn)
        ));
    }
    if s.undeliverable > 0 {
        text.push_str(&format!(
            ", {} undeliverable",
            runlog::human::grouped(s.undeliverable)
        ));
    }
    text
}

/// `PASS`, `WARN`, `FAIL`.
fn upper(status: Status) -> String {
    status.as_str().to_uppercase()
}

/// Peak heap (against its measured budget when there is one), buffered and RSS.
fn memory_text(m: &runlog::Memory) -> String {
    let heap = if m.heap_budget_bytes > 0 {
        format!(
            "peak heap {} (budget {} for the {} limit: {:.3} heap bytes per buffered byte, measured)",
            human::bytes(m.peak_heap_bytes),
            human::bytes(m.heap_budget_bytes),
            human::bytes(m.max_buffered_bytes),
            m.heap_per_buffered_byte,
        )
    } else {
        format!(
            "peak heap {} ({:.2}x the {} limit)",
            human::bytes(m.peak_heap_bytes),
            m.peak_heap_bytes as f64 / m.max_buffered_bytes.max(1) as f64,
            human::bytes(m.max_buffered_bytes),
        )
    };
    format!(
        "{heap}, peak buffered {}, peak RSS {}",
        human::bytes(m.peak_buffered_bytes),
        human::bytes(m.peak_rss_bytes),
    )
}

fn section_lines(name: &str, section: &Section, word: &dyn Fn(Status) -> String) -> String {
    let mut out = format!("  {name:<12} {}", word(section.status));
    for note in &section.notes {
        out.push('\n');
        out.push_str(&bullet(note));
    }
    out
}

/// The share of offers refused or evicted, in percent (0 with no offers).
pub(crate) fn refused_pct(t: &runlog::Totals) -> f64 {
    if t.attempted > 0 {
        (t.rejected + t.dropped) as f64 / t.attempted as f64 * 100.0
    } else {
        0.0
    }
}

/// The thresholds (each PASS or FAIL with the figure), what was checked, and what was not
/// judged.
fn verdict_lines(a: &runlog::Assessment, word: &dyn Fn(Status) -> String) -> String {
    let mut out = String::new();
    if !a.thresholds.is_empty() {
        let failed = a.failed_thresholds().count();
        let status = if failed == 0 {
            Status::Pass
        } else {
            Status::Fail
        };
        out.push_str(&format!("  {:<12} {}", "thresholds", word(status)));
        for t in &a.thresholds {
            let mark = if t.passed { "pass" } else { "FAIL" };
            out.push('\n');
            out.push_str(&bullet(&format!("{mark} {}: {}", t.threshold, t.note)));
        }
        out.push('\n');
    }
    let thresholds = match a.thresholds.len() {
        0 => String::new(),
        1 => ", 1 threshold".to_owned(),
        n => format!(", {n} thresholds"),
    };
    out.push_str(&field(
        "checked",
        &format!("correctness, pressure, memory, drain{thresholds}"),
    ));
    for note in &a.not_judged {
        out.push('\n');
        out.push_str(&bullet(note));
    }
    out
}

/// `  label        text`, the text wrapped under itself.
pub(crate) fn field(label: &str, text: &str) -> String {
    wrap(&format!("  {label:<12} "), &" ".repeat(INDENT), text)
}

/// A note under a label: `- text`, wrapped under the text.
fn bullet(text: &str) -> String {
    wrap(
        &format!("{}- ", " ".repeat(INDENT)),
        &" ".repeat(INDENT + 2),
        text,
    )
}

/// `text` after `first`, wrapped at word boundaries to [`WIDTH`] columns, each further
/// line starting with `rest`. A ` · ` separator stays with the word before it, a unit
/// with its number (`64.0 MiB`); a word longer than a line (a path) is kept whole, on a
/// line of its own.
fn wrap(first: &str, rest: &str, text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match words.last_mut() {
            Some(last) if word == "·" || (ends_in_digit(last) && is_unit(word)) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_owned()),
        }
    }
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut bare = true;
    for word in words {
        if rest.chars().count() + word.chars().count() > WIDTH {
            // Too long for any line (a path): alone on a line of its own, never broken,
            // so it can be copied whole.
            let before = std::mem::replace(&mut line, rest.to_owned());
            lines.push(before.trim_end().to_owned());
            lines.push(word);
            bare = true;
            continue;
        }
        let len = line.chars().count();
        if !bare && len + 1 + word.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, rest.to_owned()));
            bare = true;
        }
        if !bare {
            line.push(' ');
        }
        line.push_str(&word);
        bare = false;
    }
    if !(bare && line.trim().is_empty()) {
        lines.push(line);
    }
    lines.join("\n")
}

fn ends_in_digit(word: &str) -> bool {
    word.ends_with(|c: char| c.is_ascii_digit())
}

/// A unit of the shared vocabulary, with what may follow it (`MiB,`, `ms)`).
fn is_unit(word: &str) -> bool {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "us", "ms", "s"];
    let bare = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
    UNITS.contains(&bare)
}

/// The drain: how long, for how much it had to move, and what it left.
fn drain_line(d: &runlog::Drain) -> String {
    let moved = match d.us_per_buffered_mib() {
        Some(per_mib) => format!(
            " for {} buffered ({} per MiB)",
            human::bytes(d.buffered_bytes_at_start),
            human::micros(per_mib)
        ),
        None => String::new(),
    };
    format!(
        "{}{moved} (shutdown {}), {} undelivered",
        human::micros(d.drain_us),
        human::micros(d.shutdown_us),
        runlog::human::grouped(d.undelivered)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_line_says_how_much_it_moved_and_how_fast_per_mib() {
        let drain = runlog::Drain {
            drain_us: 17_500,
            buffered_bytes_at_start: 64 << 20,
            buffered_events_at_start: 65_536,
            ..runlog::Drain::default()
        };
        let line = drain_line(&drain);
        assert!(
            line.starts_with("17.5 ms for 64.0 MiB buffered ("),
            "{line}"
        );
        assert!(line.contains(" per MiB)"), "{line}");
        let old = runlog::Drain {
            drain_us: 560,
            ..runlog::Drain::default()
        };
        assert!(
            !drain_line(&old).contains("per MiB"),
            "{}",
            drain_line(&old)
        );
    }

    /// A record of a real run (the reports' fixture), with thresholds judged and what was
    /// not judged, as a run leaves it.
    fn realistic() -> RunResults {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../reports/tests/fixtures/basic/results.json"
        );
        let mut r = runlog::read_results(std::path::Path::new(path)).expect("fixture");
        r.config.thresholds = runlog::Thresholds(vec![
            "p99<50ms".parse().expect("threshold"),
            "refused<1%".parse().expect("threshold"),
        ]);
        r.memory.heap_budget_bytes = 92_274_688;
        r.memory.heap_per_buffered_byte = 1.27;
        let (judged, not_judged) = crate::thresholds::judge(&r);
        r.assessment.thresholds = judged;
        r.assessment.not_judged = not_judged;
        r
    }

    #[test]
    fn every_line_of_a_realistic_summary_fits_80_columns() {
        let r = realistic();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(tmp.path(), &r.run_id).expect("run dir");
        let text = summary(&r, &dir, false);
        for line in text.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} columns: {line}\n{text}",
                line.chars().count()
            );
        }
        assert!(text.starts_with("soak 20261123-113408-5db3: "), "{text}");
        assert!(
            text.contains("\n  memory       peak heap 87.2 MiB"),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "plain text has no escapes: {text}"
        );
    }

    #[test]
    fn a_disk_tier_gets_one_line_that_fits() {
        let mut r = realistic();
        r.spill = Some(runlog::SpillTotals {
            spilled: 1_234_567,
            replayed: 1_234_000,
            left_on_disk: 567,
            recovered: 12_000,
            peak_disk_bytes: 300 << 20,
            max_disk_bytes: 1 << 30,
            fallbacks: 3,
            ..runlog::SpillTotals::default()
        });
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(tmp.path(), &r.run_id).expect("run dir");
        let text = summary(&r, &dir, false);
        assert!(
            text.contains(
                "\n  disk tier    1.23M spilled, 1.23M replayed, peak 300.0 MiB of 1.0 GiB on disk,"
            ),
            "{text}"
        );
        assert!(
            text.contains("567 left on disk at exit, 12,000 recovered at start"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        r.spill = None;
        assert!(!summary(&r, &dir, false).contains("disk tier"));
    }

    #[test]
    fn the_verdict_is_coloured_only_when_asked() {
        let r = realistic();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(tmp.path(), &r.run_id).expect("run dir");
        let text = summary(&r, &dir, true);
        let first = text.lines().next().expect("a line");
        assert!(
            first.contains(&crate::style::verdict(
                r.assessment.overall,
                &upper(r.assessment.overall),
                true
            )),
            "{first}"
        );
        assert!(first.contains('\u{1b}'), "{first}");
    }

    #[test]
    fn a_path_too_long_for_a_line_stands_whole_on_its_own() {
        let long = format!("/tmp/{}", "d".repeat(WIDTH));
        let text = field("run dir", &long);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["  run dir", long.as_str()]);
        let text = field("payload", &format!("a {long} b"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], long, "{text}");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() <= WIDTH || *l == long)
        );
    }

    #[test]
    fn wrapping_keeps_words_and_separators_together() {
        let text = wrap("  label        ", "               ", &"word · ".repeat(20));
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
            assert!(!line.trim_start().starts_with('·'), "{line}");
        }
        assert_eq!(wrap("> ", "  ", "a b"), "> a b");
        let text = wrap(
            "",
            "",
            &format!("{} 64.0 MiB, 5 ms)", "x".repeat(WIDTH - 6)),
        );
        assert!(text.ends_with("\n64.0 MiB, 5 ms)"), "{text}");
    }
}
