//! A one-hour run (3600 one-second samples) stays small: series are pooled, not dropped.

mod common;

use common::{polylines, series_points, svg};
use hdrhistogram::Histogram;
use runlog::{
    Event, EventKind, FlushReasonCounts, LatencySummary, Limits, RunResults, Sample, SamplesLog,
    ScenarioConfig,
};

const HOUR: u32 = 3600;

fn sample(i: u32, config: &ScenarioConfig) -> Sample {
    let t = f64::from(i);
    let wobble = (t / 37.0).sin();
    let spike = if i == 1234 { 5.0 } else { 1.0 };
    let latency = LatencySummary {
        count: 700_000,
        p50: 400_000,
        p90: 410_000,
        p99: (420_000.0 * (1.0 + 0.2 * wobble) * spike) as u64,
        p999: 430_000,
        max: (450_000.0 * spike) as u64,
    };
    Sample {
        t_s: t,
        interval_s: 1.0,
        accepted_per_sec: 720_000.0 + 30_000.0 * wobble,
        delivered_per_sec: (720_000.0 + 30_000.0 * wobble) * spike,
        rejected_per_sec: 100_000.0 + 20_000.0 * (t / 11.0).cos(),
        batches_per_sec: 5000.0,
        buffered_bytes: 60_000_000 + (4_000_000.0 * wobble) as u64,
        heap_allocated_bytes: 90_000_000 + u64::from(i) * 10,
        heap_resident_bytes: 110_000_000 + u64::from(i) * 12,
        rss_bytes: 120_000_000 + u64::from(i) * 12,
        cpu_percent: 80.0 + 10.0 * wobble,
        latency_us: latency,
        mean_batch_bytes: 32_600.0 + 50.0 * wobble,
        flush_reasons: FlushReasonCounts {
            bytes: 5000,
            ..Default::default()
        },
        limits: Limits::from_config(config),
        phase: if i < HOUR {
            "run".into()
        } else {
            "drain".into()
        },
        ..Default::default()
    }
}

fn one_hour_record() -> reports::RunRecord {
    let config = ScenarioConfig {
        duration_s: f64::from(HOUR),
        ..Default::default()
    };
    let samples: Vec<Sample> = (1..=HOUR + 1).map(|i| sample(i, &config)).collect();
    let mut events = vec![Event::new(0.0, EventKind::Phase { name: "run".into() })];
    for k in 1..6 {
        events.push(Event::new(
            f64::from(k * 600),
            EventKind::Reconfigure {
                knob: "interval_us".into(),
                from: "10000".into(),
                to: "5000".into(),
                source: "schedule".into(),
            },
        ));
    }
    events.push(Event::new(
        f64::from(HOUR),
        EventKind::Phase {
            name: "drain".into(),
        },
    ));
    let hlog = (0..HOUR)
        .map(|i| {
            let mut h = Histogram::<u64>::new(3).unwrap();
            for v in 0..20u64 {
                h.record(300_000 + v * 7_000 + u64::from(i % 13) * 1000)
                    .unwrap();
            }
            (f64::from(i), 1.0, h)
        })
        .collect();
    reports::RunRecord {
        run_id: "synthetic-1h".into(),
        results: Some(RunResults {
            run_id: "synthetic-1h".into(),
            config,
            events: events.clone(),
            duration_s: f64::from(HOUR),
            ..Default::default()
        }),
        samples: SamplesLog {
            samples,
            events,
            truncated: None,
        },
        hlog: Some(hlog),
        warnings: Vec::new(),
    }
}

#[test]
fn a_one_hour_report_stays_under_3_mb() {
    let html = reports::render_html(&one_hour_record());
    eprintln!("one-hour report: {} bytes", html.len());
    assert!(html.len() < 3_000_000, "{} bytes", html.len());
    for id in [
        "chart-throughput",
        "chart-buffered",
        "chart-memory",
        "chart-latency",
        "chart-batch-size",
        "chart-cpu",
    ] {
        let chart = svg(&html, id);
        let points = series_points(chart, "#1F77B4");
        assert!(
            (300..=600).contains(&points),
            "{id}: {points} points, pooled from 3601"
        );
        assert_eq!(
            polylines(chart, "#7B3294").len(),
            5,
            "{id}: five reconfigure markers"
        );
    }
}

#[test]
fn pooling_keeps_the_spike() {
    let html = reports::render_html(&one_hour_record());
    // The 5x latency spike at 1234 s sets the top of the latency axis: p99 there is 2.1 s.
    let labels = common::texts(svg(&html, "chart-latency"));
    assert!(labels.iter().any(|t| t == "latency (s)"), "{labels:?}");
    assert!(
        labels.iter().any(|t| t == "2"),
        "the axis reaches the spike: {labels:?}"
    );
    // And the pooled max series still climbs to it: one point far above all the others.
    let mut ys: Vec<i32> = common::series_coords(svg(&html, "chart-latency"), "#D62728")
        .iter()
        .map(|p| p.1)
        .collect();
    assert!(ys.len() <= 600, "pooled");
    ys.sort_unstable();
    assert!(ys[0] + 100 < ys[1], "the spike is drawn: {:?}", &ys[..3]);
}
