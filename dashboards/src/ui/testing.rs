//! Test helpers: fixture samples and rendering on ratatui's `TestBackend`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use runlog::{FlushReasonCounts, LatencySummary, Limits, Sample, ScenarioConfig};

use crate::app::App;
use crate::options::DashboardOptions;

/// A sample at `t_s` of a busy default-scenario run.
pub(crate) fn sample(t_s: f64) -> Sample {
    Sample {
        t_s,
        interval_s: 1.0,
        attempted_per_sec: 600_000.0,
        accepted_per_sec: 500_000.0,
        rejected_per_sec: 100_000.0,
        dropped_per_sec: 0.0,
        delivered_per_sec: 480_000.0 + t_s * 1000.0,
        batches_per_sec: 2_000.0,
        delivered_bytes_per_sec: 96_000_000.0,
        buffered_bytes: 12_897_485,
        buffered_items: 60_000,
        peak_buffered_bytes: 40 << 20,
        heap_allocated_bytes: 80 << 20,
        heap_resident_bytes: 100 << 20,
        rss_bytes: 120 << 20,
        cpu_percent: 180.0,
        latency_us: LatencySummary {
            count: 480_000,
            p50: 1_200,
            p90: 3_000,
            p99: 4_500,
            p999: 7_000,
            max: 9_100,
        },
        mean_batch_bytes: 12_600.0,
        flush_reasons: FlushReasonCounts {
            interval: 400,
            bytes: 1_600,
            ..Default::default()
        },
        limits: Limits::from_config(&ScenarioConfig::default()),
        paused: false,
        phase: "run".into(),
        ..Sample::default()
    }
}

/// An app of the default scenario, read-only, that has seen `n` samples.
pub(crate) fn app_with_samples(n: usize) -> App {
    let options = DashboardOptions::new("/nonexistent/samples.jsonl")
        .with_scenario(ScenarioConfig::default());
    let mut app = App::new(&options);
    for i in 1..=n {
        app.on_line(sample(i as f64).into());
    }
    app
}

/// Draws with `draw` on a `width` x `height` `TestBackend` and returns its buffer.
pub(crate) fn draw(width: u16, height: u16, draw: impl FnOnce(Rect, &mut Buffer)) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| {
            let area = frame.area();
            draw(area, frame.buffer_mut());
        })
        .expect("draws");
    terminal.backend().buffer().clone()
}

/// The buffer's rows as text.
pub(crate) fn lines(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (area.top()..area.bottom())
        .map(|y| {
            (area.left()..area.right())
                .map(|x| buf[(x, y)].symbol())
                .collect()
        })
        .collect()
}

/// The buffer as one string, rows joined by newlines (for assertion messages).
pub(crate) fn text(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// The row holding `needle`, with its index.
pub(crate) fn find_row(buf: &Buffer, needle: &str) -> Option<(u16, String)> {
    lines(buf)
        .into_iter()
        .enumerate()
        .find(|(_, row)| row.contains(needle))
        .map(|(y, row)| (y as u16, row))
}

/// The area inside a panel's border that fills the whole buffer.
pub(crate) fn inside(buf: &Buffer) -> Rect {
    buf.area.inner(ratatui::layout::Margin::new(1, 1))
}
