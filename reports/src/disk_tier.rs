//! The "Disk tier" section of a run report: for a run whose samples carry the disk
//! tier's readings, its two time charts and its key figures. A run without the tier
//! has no such section.

use runlog::{Sample, SpillSample};

use crate::charts::{self, Timeline};
use crate::format;
use crate::how_to_read;
use crate::html::{Cell, Table, escape_html};
use crate::tables::figure;

/// The disk tier's figures over a run, from its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DiskTier {
    /// The largest `disk_bytes` sampled.
    pub(crate) peak_disk_bytes: u64,
    /// The largest disk budget in force (0: none recorded).
    pub(crate) budget_bytes: u64,
    /// The last sample's readings: cumulative totals and the backlog left at the end.
    pub(crate) last: SpillSample,
}

impl DiskTier {
    /// The figures of `samples`; `None` when no sample has the tier's readings.
    pub(crate) fn of(samples: &[Sample]) -> Option<DiskTier> {
        let readings = || samples.iter().filter_map(|s| s.spill);
        let last = readings().next_back()?;
        Some(DiskTier {
            peak_disk_bytes: readings().map(|d| d.disk_bytes).max().unwrap_or(0),
            budget_bytes: readings().map(|d| d.max_disk_bytes).max().unwrap_or(0),
            last,
        })
    }
}

/// The section: a heading, its "how to read this" line, the charts and the figures.
pub(crate) fn section(timeline: &Timeline<'_>, tier: &DiskTier) -> String {
    let mut out = format!(
        "<h2 id=\"disk-tier\">Disk tier</h2>\n<p class=\"how\" id=\"disk-tier-how\">{}</p>\n<div class=\"grid\">\n",
        escape_html(how_to_read::DISK_TIER)
    );
    for chart in [
        charts::spill::disk_chart(timeline),
        charts::spill::rates_chart(timeline),
    ] {
        out.push_str("<section class=\"card chart-card\">");
        out.push_str(&chart);
        out.push_str("</section>\n");
    }
    out.push_str(&table(tier));
    out.push_str("</div>\n");
    out
}

/// The key figures: peak disk use against the budget, what went to disk and came back,
/// what was left there, and what the disk could not take.
fn table(tier: &DiskTier) -> String {
    let bytes = |n: u64| figure(format::bytes(n), format!("{} B", format::grouped(n)));
    let events = |n: u64| Cell::num(format::grouped(n));
    let peak = if tier.budget_bytes > 0 {
        figure(
            format!(
                "{} ({} of the budget)",
                format::bytes(tier.peak_disk_bytes),
                format::percent(format::share(tier.peak_disk_bytes, tier.budget_bytes))
            ),
            format!("{} B", format::grouped(tier.peak_disk_bytes)),
        )
    } else {
        bytes(tier.peak_disk_bytes)
    };
    let budget = if tier.budget_bytes > 0 {
        bytes(tier.budget_bytes)
    } else {
        Cell::num("not recorded")
    };
    let d = &tier.last;
    let rows = vec![
        ("peak on disk".to_owned(), peak),
        ("disk budget".to_owned(), budget),
        ("events spilled to disk".to_owned(), events(d.spilled_total)),
        (
            "events replayed into memory".to_owned(),
            events(d.replayed_total),
        ),
        (
            "events left on disk at the end".to_owned(),
            events(d.backlog_events),
        ),
        (
            "fallbacks (disk full or failing)".to_owned(),
            events(d.fallbacks_total),
        ),
        ("disk errors".to_owned(), events(d.errors_total)),
    ];
    Table::key_values("table-disk-tier", "Disk tier", rows).render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_spill(t_s: f64, disk_bytes: u64, backlog_events: u64) -> Sample {
        Sample {
            t_s,
            spill: Some(SpillSample {
                disk_bytes,
                backlog_events,
                max_disk_bytes: 1 << 30,
                spilled_total: (t_s * 100.0) as u64,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn figures_take_the_peak_and_the_last_readings() {
        let samples = [
            Sample::default(),
            with_spill(1.0, 5 << 20, 10),
            with_spill(2.0, 9 << 20, 40),
            with_spill(3.0, 2 << 20, 7),
            Sample {
                t_s: 4.0,
                ..Default::default()
            },
        ];
        let tier = DiskTier::of(&samples).expect("readings");
        assert_eq!(tier.peak_disk_bytes, 9 << 20);
        assert_eq!(tier.budget_bytes, 1 << 30);
        assert_eq!(
            (tier.last.backlog_events, tier.last.spilled_total),
            (7, 300)
        );
        assert_eq!(DiskTier::of(&[Sample::default()]), None);
        assert_eq!(DiskTier::of(&[]), None);
    }

    #[test]
    fn a_tier_without_a_budget_says_so() {
        let mut sample = with_spill(1.0, 2048, 0);
        if let Some(d) = sample.spill.as_mut() {
            d.max_disk_bytes = 0;
        }
        let html = table(&DiskTier::of(&[sample]).expect("readings"));
        assert!(html.contains("not recorded"), "{html}");
        assert!(
            html.contains("2.0 KiB") && !html.contains("of the budget"),
            "{html}"
        );
    }
}
