//! The disk tier in one line, when the latest sample has its readings: bytes on disk
//! against the budget, the events waiting there, and the spilled and replayed rates,
//! e.g. `disk 12.3 MiB / 1.0 GiB · backlog 41.2k · spilled 8.1k/s · replayed 7.9k/s`.
//!
//! Green while nothing waits on disk; yellow while a backlog does (the overflow in use,
//! as under pressure it is meant to be); red when fallbacks or disk errors grew in the
//! last interval (the disk is full or failing), which the line then names, so it reads
//! without colour too.

use ratatui::buffer::Buffer;
use ratatui::layout::{Margin, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Paragraph, Widget};
use runlog::SpillSample;

use crate::app::App;
use crate::format;
use crate::ui::palette;

/// Between the parts of the line.
const SEPARATOR: &str = " · ";

/// Whether the line is drawn: the latest sample has the disk tier's readings.
pub(crate) fn shown(app: &App) -> bool {
    readings(app).is_some()
}

/// The rows the line takes: one with a disk tier, none without.
pub(crate) fn height(app: &App) -> u16 {
    u16::from(shown(app))
}

/// The latest readings, and the previous sample's (zero before the tier's first).
fn readings(app: &App) -> Option<(SpillSample, SpillSample)> {
    let mut newest = app.samples().rev();
    let latest = newest.next()?.spill?;
    let previous = newest.next().and_then(|s| s.spill).unwrap_or_default();
    Some((latest, previous))
}

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some((latest, previous)) = readings(app) else {
        return;
    };
    let area = area.inner(Margin::new(1, 0));
    let (text, colour) = line(&latest, &previous, usize::from(area.width));
    Paragraph::new(text)
        .style(Style::new().fg(colour))
        .render(area, buf);
}

/// The line's text fitted to `width` columns, and its colour. Parts that do not fit are
/// left out whole, least needed first: the rates, then the backlog; the disk use and
/// what grew are kept.
fn line(latest: &SpillSample, previous: &SpillSample, width: usize) -> (String, Color) {
    let fallbacks = latest
        .fallbacks_total
        .saturating_sub(previous.fallbacks_total);
    let errors = latest.errors_total.saturating_sub(previous.errors_total);
    let disk = if latest.max_disk_bytes > 0 {
        format!(
            "disk {} / {}",
            format::bytes(latest.disk_bytes),
            format::bytes(latest.max_disk_bytes)
        )
    } else {
        format!("disk {}", format::bytes(latest.disk_bytes))
    };
    // (text, priority: lower is kept longer), in display order.
    let mut parts: Vec<(String, u8)> = vec![
        (disk, 0),
        (
            format!("backlog {}", format::count(latest.backlog_events)),
            2,
        ),
        (
            format!("spilled {}", format::rate(latest.spilled_per_sec)),
            3,
        ),
        (
            format!("replayed {}", format::rate(latest.replayed_per_sec)),
            4,
        ),
    ];
    if fallbacks > 0 {
        parts.push((format!("fallbacks +{}", format::count(fallbacks)), 1));
    }
    if errors > 0 {
        parts.push((format!("disk errors +{}", format::count(errors)), 1));
    }
    let joined = |parts: &[(String, u8)]| {
        parts
            .iter()
            .map(|(text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join(SEPARATOR)
    };
    while parts.len() > 1 && joined(&parts).chars().count() > width {
        let Some(least) = parts
            .iter()
            .enumerate()
            .max_by_key(|(_, (_, priority))| *priority)
            .map(|(i, _)| i)
        else {
            break;
        };
        parts.remove(least);
    }
    let colour = if fallbacks > 0 || errors > 0 {
        palette::BAD
    } else if latest.backlog_events > 0 {
        palette::NOTE
    } else {
        palette::GOOD
    };
    (joined(&parts), colour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, sample, text};

    fn readings(backlog_events: u64, fallbacks_total: u64, errors_total: u64) -> SpillSample {
        SpillSample {
            spilled_per_sec: 8_123.0,
            replayed_per_sec: 7_912.0,
            spilled_total: 500_000,
            replayed_total: 458_800,
            backlog_events,
            disk_bytes: 12_897_485,
            max_disk_bytes: 1 << 30,
            fallbacks_total,
            errors_total,
        }
    }

    /// An app whose last two samples have `before` and `now` as the tier's readings.
    fn app_of(before: Option<SpillSample>, now: SpillSample) -> App {
        let mut app = app_with_samples(3);
        for (t_s, spill) in [(4.0, before), (5.0, Some(now))] {
            let mut s = sample(t_s);
            s.spill = spill;
            app.on_line(s.into());
        }
        app
    }

    fn drawn(app: &App, width: u16) -> (String, Color) {
        let buf = draw(width, 1, |area, buf| render(app, area, buf));
        (text(&buf), buf[(1, 0)].fg)
    }

    #[test]
    fn the_line_reads_the_latest_sample_through_the_shared_vocabulary() {
        let app = app_of(Some(readings(0, 0, 0)), readings(41_234, 0, 0));
        let (screen, colour) = drawn(&app, 78);
        assert_eq!(
            screen.trim_end(),
            " disk 12.3 MiB / 1.0 GiB · backlog 41.2k · spilled 8.1k/s · replayed 7.9k/s"
        );
        assert_eq!(colour, palette::NOTE, "a backlog waits on disk");
        let idle = app_with_tier_idle();
        let (screen, colour) = drawn(&idle, 78);
        assert!(screen.contains("backlog 0 ·"), "{screen}");
        assert_eq!(colour, palette::GOOD);
    }

    fn app_with_tier_idle() -> App {
        app_of(Some(readings(0, 0, 0)), readings(0, 0, 0))
    }

    #[test]
    fn fallbacks_or_errors_that_grew_are_red_and_named() {
        let (screen, colour) = drawn(&app_of(Some(readings(9, 3, 0)), readings(9, 1_503, 0)), 118);
        assert_eq!(colour, palette::BAD);
        assert!(screen.contains("· fallbacks +1.5k"), "{screen}");
        let (screen, colour) = drawn(&app_of(Some(readings(9, 3, 1)), readings(9, 3, 2)), 118);
        assert_eq!(colour, palette::BAD);
        assert!(screen.contains("· disk errors +1"), "{screen}");
        assert!(!screen.contains("fallbacks"), "{screen}");
        // Counted before, not grown in this interval: the backlog's yellow, nothing named.
        let (screen, colour) = drawn(&app_of(Some(readings(9, 3, 2)), readings(9, 3, 2)), 118);
        assert_eq!(colour, palette::NOTE);
        assert!(!screen.contains('+'), "{screen}");
        // The tier's first sample: what it counted grew from nothing.
        let (_, colour) = drawn(&app_of(None, readings(0, 0, 4)), 118);
        assert_eq!(colour, palette::BAD);
    }

    #[test]
    fn a_narrow_line_leaves_parts_out_whole_keeping_disk_use_and_trouble() {
        let app = app_of(Some(readings(5, 0, 0)), readings(41_234, 20, 0));
        let (wide, _) = drawn(&app, 118);
        assert!(wide.contains("replayed 7.9k/s · fallbacks +20"), "{wide}");
        let (narrow, _) = drawn(&app, 60);
        assert_eq!(
            narrow.trim_end(),
            " disk 12.3 MiB / 1.0 GiB · backlog 41.2k · fallbacks +20"
        );
        let (tight, _) = drawn(&app, 30);
        assert_eq!(tight.trim_end(), " disk 12.3 MiB / 1.0 GiB");
    }

    #[test]
    fn without_a_disk_tier_there_is_no_line() {
        let app = app_with_samples(3);
        assert!(!shown(&app));
        assert_eq!(height(&app), 0);
        let (screen, _) = drawn(&app, 78);
        assert!(screen.trim().is_empty(), "{screen}");
        // A tier whose latest sample lacks readings is not shown either.
        let mut app = app_of(None, readings(1, 0, 0));
        app.on_line(sample(6.0).into());
        assert!(!shown(&app));
    }
}
