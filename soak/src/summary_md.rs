//! `--summary-md FILE`: the end-of-run summary as Markdown, for a CI job's page. The same
//! figures as the plain summary, in the same vocabulary ([`crate::human`]).

use runlog::{RunDir, RunResults, Section};

use crate::human;

/// The summary of the run `r` (in `dir`) as a Markdown document.
pub(crate) fn markdown(r: &RunResults, dir: &RunDir) -> String {
    let t = &r.totals;
    let a = &r.assessment;
    let refused_pct = crate::summary::refused_pct(t);
    let l = &r.latency_us;
    let mut md = format!(
        "## Soak {}: {}\n\n{}\n\n| figure | value |\n| --- | --- |\n",
        r.run_id,
        a.overall.as_str().to_uppercase(),
        escape(&crate::progress::scenario_line(&r.config)),
    );
    for (name, value) in [
        (
            "delivered",
            format!(
                "{} avg ({} events in {})",
                human::rate(r.throughput.avg_delivered_per_sec),
                human::count(t.delivered),
                runlog::human::seconds(r.duration_s)
            ),
        ),
        ("refused or evicted", runlog::human::percent(refused_pct)),
        (
            "latency p50 / p99 / max",
            format!(
                "{} / {} / {}",
                human::micros(l.p50),
                human::micros(l.p99),
                human::micros(l.max)
            ),
        ),
        (
            "peak heap",
            format!(
                "{} (budget {})",
                human::bytes(r.memory.peak_heap_bytes),
                human::bytes(r.memory.heap_budget_bytes)
            ),
        ),
        (
            "drain",
            match r.drain.us_per_buffered_mib() {
                Some(per_mib) => format!(
                    "{} for {} buffered ({} per MiB), {} undelivered",
                    human::micros(r.drain.drain_us),
                    human::bytes(r.drain.buffered_bytes_at_start),
                    human::micros(per_mib),
                    r.drain.undelivered
                ),
                None => format!(
                    "{}, {} undelivered",
                    human::micros(r.drain.drain_us),
                    r.drain.undelivered
                ),
            },
        ),
    ] {
        md.push_str(&format!("| {name} | {} |\n", escape(&value)));
    }
    if let Some(spill) = &r.spill {
        md.push_str(&format!(
            "| disk tier | {} |\n",
            escape(&crate::summary::disk_tier(spill))
        ));
    }
    md.push_str("\n### Assessment\n\n");
    for (name, section) in [
        ("correctness", &a.correctness),
        ("pressure", &a.pressure),
        ("memory", &a.memory),
        ("drain", &a.drain),
    ] {
        md.push_str(&section_md(name, section));
    }
    for threshold in &a.thresholds {
        let mark = if threshold.passed { "pass" } else { "FAIL" };
        md.push_str(&format!(
            "- threshold `{}`: **{mark}**: {}\n",
            threshold.threshold,
            escape(&threshold.note)
        ));
    }
    md.push_str(&format!("\nRun directory: `{}`\n", dir.path().display()));
    md
}

fn section_md(name: &str, section: &Section) -> String {
    let mut out = format!("- {name}: **{}**\n", section.status.as_str().to_uppercase());
    for note in &section.notes {
        out.push_str(&format!("  - {}\n", escape(note)));
    }
    out
}

/// Text safe in a Markdown table cell or list item: pipes escaped, no line breaks.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_a_markdown_table_and_list_in_the_shared_vocabulary() {
        let mut r = RunResults {
            run_id: "20261205-000000-abcd".into(),
            ..RunResults::default()
        };
        r.latency_us.p99 = 61_000;
        r.memory.peak_heap_bytes = 64 << 20;
        r.assessment.memory.notes = vec!["a | b".into()];
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &r.run_id).unwrap();
        let md = markdown(&r, &run);
        assert!(
            md.starts_with("## Soak 20261205-000000-abcd: PASS\n"),
            "{md}"
        );
        assert!(md.contains("| figure | value |\n| --- | --- |\n"), "{md}");
        assert!(
            md.contains("| latency p50 / p99 / max | 0 us / 61 ms / 0 us |"),
            "{md}"
        );
        assert!(md.contains("| peak heap | 64.0 MiB"), "{md}");
        assert!(md.contains("  - a \\| b\n"), "{md}");
    }
}
