//! The follower-driven update: a samples.jsonl written in two steps, polled after each.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

use dashboards::{App, DashboardOptions, LogKind, RunState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use runlog::{Event, EventKind, Limits, Line, Sample, SamplesFollower, ScenarioConfig};

fn sample(t_s: f64, phase: &str, limits: &Limits) -> Line {
    Line::Sample(Sample {
        t_s,
        interval_s: 0.5,
        accepted_per_sec: 1000.0 * t_s,
        delivered_per_sec: 900.0 * t_s,
        buffered_bytes: 3 << 20,
        limits: limits.clone(),
        phase: phase.into(),
        ..Sample::default()
    })
}

fn append(path: &Path, lines: &[Line], partial: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open samples.jsonl");
    for line in lines {
        let mut text = serde_json::to_string(line).expect("serializes");
        text.push('\n');
        file.write_all(text.as_bytes()).expect("write");
    }
    file.write_all(partial.as_bytes()).expect("write");
}

fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(140, 44)).expect("backend");
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .expect("draw");
    let buf = terminal.backend().buffer();
    let width = usize::from(buf.area.width);
    buf.content()
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn app_follows_a_growing_samples_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("samples.jsonl");
    let options = DashboardOptions::new(&path).with_scenario(ScenarioConfig::default());
    let mut app = App::new(&options);
    let mut follower = SamplesFollower::new(&path);
    let start = Limits::from_config(&ScenarioConfig::default());

    assert_eq!(app.poll(&mut follower), 0, "no file yet");
    assert_eq!(app.run_state(), RunState::Waiting);

    // Step 1: the run phase, two samples, and half of a reconfigure line.
    let run = Event::new(0.0, EventKind::Phase { name: "run".into() });
    append(
        &path,
        &[
            run.into(),
            sample(0.5, "run", &start),
            sample(1.0, "run", &start),
        ],
        r#"{"at_s":1.2,"kind":"reconfigure","knob":"interval_us","#,
    );
    assert_eq!(app.poll(&mut follower), 3);
    assert_eq!(app.samples().len(), 2);
    assert_eq!(app.latest().map(|s| s.t_s), Some(1.0));
    assert_eq!(app.run_state(), RunState::Running);
    assert_eq!(app.log().len(), 1);

    // Step 2: the rest of the reconfigure line, a sample with the new limit, the drain.
    let changed = Limits {
        interval_us: 5_000,
        ..start.clone()
    };
    let drain = Event::new(
        1.6,
        EventKind::Phase {
            name: "drain".into(),
        },
    );
    append(
        &path,
        &[],
        "\"from\":\"10000\",\"to\":\"5000\",\"source\":\"control\"}\n",
    );
    append(&path, &[sample(1.5, "run", &changed), drain.into()], "");
    assert_eq!(app.poll(&mut follower), 3);
    assert_eq!(app.limits().map(|l| l.interval_us), Some(5_000));
    assert_eq!(app.run_state(), RunState::Draining);
    let texts: Vec<&str> = app.log().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["run", "interval 10 ms -> 5 ms (control)", "drain"]);
    let shown = screen(&app);
    assert!(
        shown.contains("interval 10 ms -> 5 ms (control)"),
        "{shown}"
    );
    assert!(shown.contains("DRAINING"), "{shown}");
    assert!(shown.contains("(start 10 ms)"), "{shown}");
}

#[test]
fn the_drain_sample_ends_the_run_and_a_bad_line_is_logged_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("samples.jsonl");
    let mut app = App::new(&DashboardOptions::new(&path));
    let mut follower = SamplesFollower::new(&path);
    let limits = Limits::from_config(&ScenarioConfig::default());

    append(&path, &[sample(0.5, "run", &limits)], "");
    assert_eq!(app.poll(&mut follower), 1);
    assert_eq!(app.run_state(), RunState::Running);
    append(&path, &[sample(0.7, "drain", &limits)], "not json\n");
    assert_eq!(app.poll(&mut follower), 1);
    assert_eq!(app.run_state(), RunState::Done);
    // The bad line comes as an error on the next poll: logged as a warning, once.
    assert_eq!(app.poll(&mut follower), 0);
    let last = app.log().last().expect("warning");
    assert_eq!(last.kind, LogKind::Warning);
    assert!(last.text.contains("samples.jsonl:3"), "{}", last.text);
    assert_eq!(app.poll(&mut follower), 0);
    assert_eq!(app.log().len(), 1);
}
