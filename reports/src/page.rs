//! The HTML skeleton: document head with the inline style sheet, the header band, the
//! warning banner. Nothing here fetches anything: no scripts, fonts, images or links.

use std::fmt::Write as _;

use runlog::Environment;

use crate::figures::KeyFigures;
use crate::format;
use crate::html::escape_html;
use crate::record::Warning;

/// The style sheet, inline: the report must open offline, alone.
const CSS: &str = r#"
:root { --ink:#222; --muted:#666; --line:#e2e2e2; --bg:#f6f7f9; --card:#fff;
  --pass:#1e7b34; --pass-bg:#e3f4e7; --warn:#8a5a00; --warn-bg:#fff3d6; --fail:#b3261e; --fail-bg:#fde4e1; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 26px 0 10px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
h3 { font-size: 14px; margin: 0 0 8px; }
.band { display:grid; grid-template-columns: minmax(230px, 1fr) 3fr; gap: 18px; align-items: stretch;
  background: var(--card); border: 1px solid var(--line); border-left: 8px solid var(--muted);
  border-radius: 8px; padding: 16px 18px; }
.band.pass { border-left-color: var(--pass); } .band.warn { border-left-color: var(--warn); }
.band.fail { border-left-color: var(--fail); }
.verdict .sub { color: var(--muted); margin-top: 6px; font-size: 13px; }
.figures { display:grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
.fig { background: var(--bg); border-radius: 6px; padding: 10px 12px; }
.fig .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.fig .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; margin: 2px 0; white-space: nowrap; }
.fig .detail { color: var(--muted); font-size: 12.5px; }
.badge { display:inline-block; font-weight: 700; font-size: 12px; padding: 2px 8px; border-radius: 10px; letter-spacing: .05em; }
.badge.big { font-size: 22px; padding: 4px 14px; border-radius: 8px; margin-bottom: 8px; }
.badge.pass { color: var(--pass); background: var(--pass-bg); }
.badge.warn { color: var(--warn); background: var(--warn-bg); }
.badge.fail { color: var(--fail); background: var(--fail-bg); }
.badge.unknown { color: var(--muted); background: var(--line); }
.banner { background: var(--warn-bg); color: #5c3c00; border: 1px solid #e8c66a; border-radius: 8px;
  padding: 10px 16px; margin-bottom: 14px; }
.banner ul { margin: 4px 0 0; padding-left: 20px; }
.grid { display:grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; align-items: start; }
table.kv td:last-child { text-align: right; }
.spaced { margin-top: 14px; }
.scenario { grid-column: 1 / -1; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); padding-top: 8px; }
.machine { grid-column: 1 / -1; color: var(--muted); font-size: 13px; margin-top: -12px; }
.machine.emulated { color: var(--warn); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
.chart-card { padding: 4px; }
svg.chart { display:block; width: 100%; height: auto; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child { color: #444; }
.raw { color: #999; font-size: 11.5px; }
ul.notes { margin: 0; padding-left: 18px; }
.how { color: var(--muted); font-size: 12.5px; }
.verdict .how { margin-top: 8px; }
.markers { margin-top: 14px; }
.better { color: var(--pass); font-weight: 600; } .worse { color: var(--fail); font-weight: 600; }
.same { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
@media (max-width: 900px) { .grid, .band { grid-template-columns: 1fr; } .figures { grid-template-columns: repeat(2, 1fr); } }
"#;

/// The `generator` meta tag of a comparison page: how `compare` recognises a page it may
/// overwrite.
pub(crate) const COMPARE_GENERATOR: &str = "metronome compare";
/// The `generator` meta tag of a run report.
pub(crate) const REPORT_GENERATOR: &str = "metronome report";

/// A complete HTML document around `body`, its `generator` meta tag saying what made it.
pub(crate) fn document(generator: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"{generator}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        escape_html(title)
    )
}

/// The banner listing what is missing or cut short; empty when nothing is.
pub(crate) fn warning_banner(warnings: &[Warning]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<div class=\"banner\" id=\"warnings\" role=\"alert\"><strong>Incomplete run record</strong><ul>",
    );
    for w in warnings {
        let _ = write!(out, "<li>{}</li>", escape_html(&w.to_string()));
    }
    out.push_str("</ul></div>\n");
    out
}

/// The machine in one line, e.g. `Machine: aarch64 · Cortex-A72 · 4 CPUs · 3.8 GiB ·
/// 4.0 KiB pages`; an emulated one is badged and says what emulated it, so its figures
/// are never taken for the hardware's.
pub(crate) fn machine_line(env: &Environment) -> String {
    let line = format!(
        "Machine: {} · {} · {} CPUs · {} memory · {} pages",
        env.arch,
        env.cpu_model,
        env.cpu_count,
        format::bytes(env.total_memory_bytes),
        format::bytes(env.page_size_bytes),
    );
    match &env.emulation {
        Some(how) => format!(
            "<div class=\"machine emulated\" id=\"machine\"><span class=\"badge warn\">EMULATED</span> {} · {}: \
             figures are the emulator's, not the hardware's</div>",
            escape_html(&line),
            escape_html(how)
        ),
        None => format!(
            "<div class=\"machine\" id=\"machine\">{}</div>",
            escape_html(&line)
        ),
    }
}

/// One big figure of the header band.
fn big_figure(label: &str, value: &str, detail: &str) -> String {
    format!(
        "<div class=\"fig\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"detail\">{}</div></div>",
        escape_html(label),
        escape_html(value),
        escape_html(detail)
    )
}

/// The first screen: the verdict and four figures answering "did it pass, how fast, how
/// much memory, how long to drain", then the scenario and the machine (when known).
pub(crate) fn header_band(
    run_id: &str,
    subtitle: &str,
    scenario: &str,
    machine: Option<&Environment>,
    f: &KeyFigures,
) -> String {
    let (class, badge) = match f.status {
        Some(s) => (s.as_str(), s.as_str().to_uppercase()),
        None => ("unknown", "NO VERDICT".to_owned()),
    };
    let refused = format::share(f.totals.rejected + f.totals.dropped, f.totals.attempted);
    let heap_detail = match f.heap_to_limit() {
        Some(x) => format!(
            "{x:.2}x the {} limit · RSS {}",
            format::bytes(f.max_buffered_bytes),
            format::bytes(f.peak_rss_bytes)
        ),
        None => format!("RSS {}", format::bytes(f.peak_rss_bytes)),
    };
    let l = &f.latency_us;
    let (drain, drain_detail) = match (f.drain_us, f.undelivered) {
        (Some(d), Some(u)) => (
            format::micros(d),
            match (f.drain_us_per_mib, f.drain_buffered_bytes) {
                (Some(per_mib), Some(held)) => format!(
                    "{} buffered · {} per MiB · {} undelivered",
                    format::bytes(held),
                    format::micros(per_mib),
                    format::grouped(u)
                ),
                _ => format!("{} undelivered", format::grouped(u)),
            },
        ),
        _ => ("n/a".to_owned(), "the run did not finish".to_owned()),
    };
    let figures = [
        big_figure(
            "Delivered",
            &format::rate(f.avg_delivered_per_sec),
            &format!(
                "avg over {} · {} refused or evicted",
                format::seconds(f.duration_s),
                format::percent(refused)
            ),
        ),
        big_figure("Peak heap", &format::bytes(f.peak_heap_bytes), &heap_detail),
        big_figure(
            "Latency p99",
            &format::micros(l.p99 as f64),
            &format!(
                "p50 {} · max {}",
                format::micros(l.p50 as f64),
                format::micros(l.max)
            ),
        ),
        big_figure("Drain", &drain, &drain_detail),
    ];
    format!(
        "<header class=\"band {class}\" id=\"summary\"><div class=\"verdict\"><span class=\"badge big {class}\" id=\"overall\">{badge}</span>\
         <h1>{}</h1><div class=\"sub\">{}</div><div class=\"how\" id=\"overall-how\">{}</div></div><div class=\"figures\">{}</div>\
         <div class=\"scenario\">{}</div>{}</header>\n",
        escape_html(run_id),
        escape_html(subtitle),
        escape_html(crate::how_to_read::overall(f.status)),
        figures.concat(),
        escape_html(scenario),
        machine.map(machine_line).unwrap_or_default()
    )
}
