//! The run report, rendered from committed fixture records and checked by reading the HTML.

mod common;

use common::{copy_fixture, fixture, series_points, svg, texts};
use reports::{RunRecord, Warning, render_html, render_run, render_run_to};

const BLUE: &str = "#1F77B4";
const RECONFIGURE: &str = "#7B3294";
const TIME_CHARTS: [&str; 6] = [
    "chart-throughput",
    "chart-buffered",
    "chart-memory",
    "chart-latency",
    "chart-batch-size",
    "chart-cpu",
];
const ALL_CHARTS: [&str; 8] = [
    "chart-throughput",
    "chart-buffered",
    "chart-memory",
    "chart-latency",
    "chart-spectrum",
    "chart-batch-size",
    "chart-flush-reasons",
    "chart-cpu",
];

fn html_of(name: &str) -> (RunRecord, String) {
    let record = RunRecord::load(&fixture(name)).unwrap();
    let html = render_html(&record);
    (record, html)
}

#[test]
fn every_chart_is_present_once_with_a_title_and_axis_units() {
    let (_, html) = html_of("basic");
    for id in ALL_CHARTS {
        assert_eq!(
            html.matches(&format!("<svg id=\"{id}\"")).count(),
            1,
            "{id}"
        );
        let chart = svg(&html, id);
        assert!(chart.contains("aria-label=\""), "{id} has a title");
        let texts = texts(chart);
        assert!(
            texts.iter().any(|t| t.contains('(') && t.contains(')')),
            "{id}: an axis label with its unit: {texts:?}"
        );
    }
    let throughput = texts(svg(&html, "chart-throughput"));
    for label in [
        "Throughput",
        "delivered/s",
        "accepted/s",
        "rejected/s",
        "dropped/s",
        "time since start (s)",
        "rate (M events/s)",
    ] {
        assert!(
            throughput.iter().any(|t| t == label),
            "{label} in {throughput:?}"
        );
    }
}

#[test]
fn series_hold_one_point_per_sample() {
    let (record, html) = html_of("basic");
    let n = record.samples().len();
    assert_eq!(n, 9, "the fixture: 8 run samples and 1 drain sample");
    // Blue is the first series of each time chart: delivered/s, buffered, heap, p50, mean batch, CPU.
    for id in TIME_CHARTS {
        assert_eq!(series_points(svg(&html, id), BLUE), n, "{id}");
    }
    let memory_texts = texts(svg(&html, "chart-memory"));
    assert!(
        memory_texts
            .iter()
            .any(|t| t.starts_with("allocated slope, 2nd half: ") && t.ends_with("/s")),
        "{memory_texts:?}"
    );
}

#[test]
fn spectrum_comes_from_the_merged_latency_log() {
    let (record, html) = html_of("basic");
    let merged = record.merged_latency().unwrap();
    assert_eq!(
        merged.len(),
        record.results.as_ref().unwrap().latency_us.count
    );
    // 3.2M deliveries support six nines: 6 * 50 steps + 1 points.
    let chart = svg(&html, "chart-spectrum");
    assert_eq!(series_points(chart, BLUE), 301);
    let labels = texts(chart);
    for tick in ["90%", "99%", "99.9%", "99.9999%"] {
        assert!(labels.iter().any(|t| t == tick), "{tick} in {labels:?}");
    }
}

#[test]
fn flush_reasons_are_bars_labelled_with_their_totals() {
    let (record, html) = html_of("basic");
    let reasons = record.results.unwrap().batches.flush_reasons;
    let chart = svg(&html, "chart-flush-reasons");
    let bars = chart
        .lines()
        .filter(|l| l.starts_with("<rect") && l.contains(&format!("fill=\"{BLUE}\"")))
        .count();
    assert_eq!(bars, 5);
    let labels = texts(chart);
    for n in [reasons.bytes, reasons.drain, reasons.interval] {
        let text = n.to_string();
        let with_commas = if n >= 1000 {
            format!("{},{:03}", n / 1000, n % 1000)
        } else {
            text
        };
        assert!(labels.contains(&with_commas), "{with_commas} in {labels:?}");
    }
}

#[test]
fn nothing_is_fetched_from_anywhere() {
    let (_, html) = html_of("reconfigured");
    let namespace = "xmlns=\"http://www.w3.org/2000/svg\"";
    let mut rest = html.as_str();
    let mut seen = 0;
    while let Some(i) = rest.find("http") {
        let before = &rest[..i];
        assert!(
            before.ends_with("xmlns=\"") && rest[i..].starts_with("http://www.w3.org/2000/svg\""),
            "unexpected URL at: {}",
            &rest[i.saturating_sub(40)..(i + 60).min(rest.len())]
        );
        seen += 1;
        rest = &rest[i + 4..];
    }
    assert_eq!(seen, html.matches(namespace).count());
    assert_eq!(seen, ALL_CHARTS.len(), "one namespace per chart");
    for banned in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!html.contains(banned), "{banned}");
    }
}

#[test]
fn tables_hold_the_fixture_figures() {
    let (_, html) = html_of("basic");
    let table = |id: &str| {
        let start = html
            .find(&format!("<table id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}"));
        let end = html[start..].find("</table>").unwrap() + start;
        html[start..end].to_owned()
    };
    let totals = table("table-totals");
    for figure in [
        "3,856,935",
        "3,192,199",
        "664,736 (17.23% of attempts)",
        "22,060",
        "723.1k/s",
    ] {
        assert!(totals.contains(figure), "{figure} in totals");
    }
    let latency = table("table-latency");
    for figure in ["411 ms", "411,391 us", "413,951 us", "3,192,199"] {
        assert!(latency.contains(figure), "{figure} in latency");
    }
    assert!(table("table-drain").contains("10,881 us"));
    assert!(table("table-memory").contains("87.2 MiB"));
    let config = table("table-config");
    assert!(config.contains("max_buffered_bytes") && config.contains("64.0 MiB"));
    assert!(table("table-environment").contains("x86_64"));
    let assessment = table("table-assessment");
    assert_eq!(
        assessment
            .matches("<span class=\"badge pass\">PASS</span>")
            .count(),
        4
    );
    assert!(assessment.contains("drained in 10881 us"));
    // The header band: verdict and the four figures.
    assert!(html.contains("id=\"overall\">PASS</span>"));
    for figure in ["723.1k/s", "87.2 MiB", "411 ms", "10.9 ms"] {
        let band = &html[html.find("id=\"summary\"").unwrap()..html.find("</header>").unwrap()];
        assert!(band.contains(figure), "{figure} in the header band");
    }
}

#[test]
fn events_are_markers_on_every_time_chart() {
    let (_, html) = html_of("reconfigured");
    for id in TIME_CHARTS {
        let chart = svg(&html, id);
        let labels = texts(chart);
        for label in [
            "run",
            "max buffered = 32.0 MiB",
            "! consumer stalled for 120 ms",
            "drain",
        ] {
            assert!(
                labels.iter().any(|t| t == label),
                "{id}: {label} in {labels:?}"
            );
        }
        assert_eq!(
            common::polylines(chart, RECONFIGURE).len(),
            1,
            "{id}: one reconfigure line"
        );
    }
    let events = &html[html.find("id=\"table-events\"").unwrap()..];
    assert!(events.contains("max buffered 64.0 MiB -&gt; 32.0 MiB (tui)"));
    // The limit line steps down: both values are on the buffered chart's dashed limit.
    let buffered = svg(&html, "chart-buffered");
    assert!(
        common::polylines(buffered, "#D62728").len() > 2,
        "a dashed limit line"
    );
}

#[test]
fn a_killed_run_renders_with_a_warning_banner() {
    let (record, html) = html_of("truncated");
    assert!(record.results.is_none());
    assert!(
        matches!(
            record.warnings[..],
            [
                Warning::ResultsMissing { .. },
                Warning::SamplesTruncated { line: 11, .. },
                // The killed run cut its latency log too: the same banner says so.
                Warning::HlogTruncated { line: 12, .. }
            ]
        ),
        "{:?}",
        record.warnings
    );
    let banner = &html[html.find("id=\"warnings\"").expect("a banner")..];
    assert!(
        banner.contains("samples.jsonl:11: the last line is cut"),
        "names the file and line"
    );
    assert!(banner.contains("results.json: missing"));
    assert!(banner.contains("latency.hlog:12: the last line is cut"));
    assert!(
        html.find("id=\"warnings\"").unwrap() < html.find("id=\"summary\"").unwrap(),
        "the banner comes first"
    );
    assert!(html.contains("id=\"overall\">NO VERDICT</span>"));
    // Eight complete samples survive; totals come from the last of them.
    assert_eq!(series_points(svg(&html, "chart-throughput"), BLUE), 8);
    let last = record.samples().last().unwrap().totals.delivered;
    assert!(html.contains("Totals and throughput (from the last sample)"));
    assert!(html.contains(&format!(
        "{},{:03},{:03}",
        last / 1_000_000,
        last / 1000 % 1000,
        last % 1000
    )));
    // The latency log lost its cut last line, not its spectrum.
    assert!(series_points(svg(&html, "chart-spectrum"), BLUE) > 100);
}

#[test]
fn a_bad_samples_line_is_an_error_naming_file_and_line() {
    let err = RunRecord::load(&fixture("corrupt-samples")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("corrupt-samples/samples.jsonl:4:"),
        "{message}"
    );
    assert!(matches!(err, reports::ReportError::Record(_)));
}

#[test]
fn a_corrupt_results_json_is_an_error_naming_the_file() {
    let err = render_run(&fixture("corrupt-results")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("corrupt-results/results.json:"),
        "{message}"
    );
}

#[test]
fn a_directory_without_a_record_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = render_run(empty.path()).unwrap_err();
    assert!(matches!(err, reports::ReportError::NotARun { .. }), "{err}");
    let err = render_run(&empty.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn render_run_writes_report_html_into_the_run_directory() {
    let run = copy_fixture("basic");
    let rendered = render_run(run.path()).unwrap();
    assert_eq!(rendered.path, run.path().join("report.html"));
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    let written = std::fs::read_to_string(&rendered.path).unwrap();
    assert_eq!(written.len(), rendered.bytes);
    assert!(written.starts_with("<!DOCTYPE html>") && written.ends_with("</html>\n"));

    let out = run.path().join("elsewhere.html");
    let again = render_run_to(run.path(), &out).unwrap();
    assert_eq!(std::fs::read_to_string(out).unwrap(), written);
    assert_eq!(again.bytes, rendered.bytes);
}

#[test]
fn text_from_the_record_is_escaped() {
    let mut record = RunRecord::load(&fixture("reconfigured")).unwrap();
    record.run_id = "<script>alert(1)</script>".into();
    let results = record.results.as_mut().unwrap();
    results
        .assessment
        .drain
        .notes
        .push("<b>bold</b> & \"quoted\"".into());
    results.events.push(runlog::Event::new(
        3.5,
        runlog::EventKind::Warning {
            message: "<i>x</i>".into(),
        },
    ));
    let html = render_html(&record);
    assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
    assert!(
        html.contains("! &lt;i&gt;x&lt;/i&gt;"),
        "marker label escaped by the SVG backend"
    );
}
