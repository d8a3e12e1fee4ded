//! Key -> command: changes, refusals, restore, pause, save, quit, read-only mode.

use std::sync::mpsc::{Receiver, sync_channel};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use runlog::{Control, Knob, Limits, ScenarioConfig};

use crate::app::{App, RunState};
use crate::keys::{Action, READ_ONLY_MESSAGE};
use crate::log::LogKind;
use crate::options::DashboardOptions;
use crate::ui::testing::sample;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::from(code)
}

fn char(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// An interactive app of the default scenario that has seen one sample with `limits`.
fn interactive(limits: Limits) -> (App, Receiver<Control>) {
    let (tx, rx) = sync_channel(16);
    let options = DashboardOptions::new("/nonexistent/samples.jsonl")
        .with_scenario(ScenarioConfig::default())
        .with_controls(tx);
    let mut app = App::new(&options);
    app.on_line(
        runlog::Sample {
            limits,
            ..sample(1.0)
        }
        .into(),
    );
    (app, rx)
}

fn default_limits() -> Limits {
    Limits::from_config(&ScenarioConfig::default())
}

fn select(app: &mut App, knob: Knob) {
    while app.selected_knob() != knob {
        app.on_key(key(KeyCode::Down));
    }
}

#[test]
fn minus_and_plus_halve_and_double_the_selected_knob() {
    let (mut app, _rx) = interactive(default_limits());
    assert_eq!(app.selected_knob(), Knob::Interval);
    let halve = Action::Send(vec![Control::SetInterval { interval_us: 5_000 }]);
    assert_eq!(app.on_key(char('-')), halve);
    let again = Action::Send(vec![Control::SetInterval { interval_us: 2_500 }]);
    assert_eq!(app.on_key(key(KeyCode::Left)), again);
    let double = Action::Send(vec![Control::SetInterval { interval_us: 5_000 }]);
    assert_eq!(app.on_key(key(KeyCode::Right)), double);
    assert_eq!(app.limits().map(|l| l.interval_us), Some(5_000));
    assert_eq!(app.status(), Some("sent: interval 2.5 ms -> 5 ms"));

    select(&mut app, Knob::ConsumerDelay);
    let delay = Action::Send(vec![Control::SetConsumerDelay { delay_us: 400 }]);
    assert_eq!(app.on_key(char('+')), delay);
}

#[test]
fn up_and_down_wrap_in_knob_order() {
    let (mut app, _rx) = interactive(default_limits());
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.selected_knob(), Knob::ConsumerDelay);
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_knob(), Knob::MaxBatchBytes);
}

#[test]
fn batch_limit_above_buffered_limit_is_refused_with_a_message() {
    let limits = Limits {
        max_buffered_bytes: 48 * 1024,
        ..default_limits()
    };
    let (mut app, _rx) = interactive(limits.clone());
    select(&mut app, Knob::MaxBatchBytes);
    assert_eq!(app.on_key(char('+')), Action::None);
    assert_eq!(app.limits(), Some(&limits));
    let expected =
        "refused: max batch 64.0 KiB is out of range (allowed: 1 B..=48.0 KiB, max buffered)";
    assert_eq!(app.status(), Some(expected));
    let last = app.log().last().expect("logged");
    assert_eq!(
        (last.kind, last.text.as_str()),
        (LogKind::Refused, expected)
    );
    assert_eq!(app.run_state(), RunState::Running);
}

#[test]
fn values_below_the_minimum_are_refused() {
    let limits = Limits {
        interval_us: 1,
        max_buffered_bytes: 1024,
        max_batch_bytes: None,
        ..default_limits()
    };
    let (mut app, _rx) = interactive(limits);
    assert_eq!(app.on_key(char('-')), Action::None);
    assert!(
        app.status()
            .unwrap_or("")
            .contains("interval 0 us is out of range"),
        "{:?}",
        app.status()
    );
    select(&mut app, Knob::MaxBufferedBytes);
    assert_eq!(app.on_key(char('-')), Action::None);
    assert!(
        app.status().unwrap_or("").contains("(allowed: 1.0 KiB..="),
        "{:?}",
        app.status()
    );
}

#[test]
fn unlimited_values_get_a_first_value_on_minus_only() {
    let limits = Limits {
        max_batch_bytes: None,
        ..default_limits()
    };
    let (mut app, _rx) = interactive(limits);
    select(&mut app, Knob::Rate);
    assert_eq!(app.on_key(char('+')), Action::None);
    assert_eq!(app.status(), Some("rate is already unlimited"));
    // Half the last sample's attempted rate (600k/s).
    let rate = Action::Send(vec![Control::SetRate {
        per_sec: Some(300_000),
    }]);
    assert_eq!(app.on_key(char('-')), rate);

    select(&mut app, Knob::MaxBatchBytes);
    assert_eq!(app.on_key(char('+')), Action::None);
    let batch = Action::Send(vec![Control::SetMaxBatchBytes {
        bytes: Some(32 * 1024),
    }]);
    assert_eq!(app.on_key(char('-')), batch);
}

#[test]
fn r_restores_the_starting_values_in_a_valid_order() {
    // Live: tiny buffer and batch; start: 64 MiB and 32 KiB. The buffer must grow first.
    let limits = Limits {
        interval_us: 5_000,
        max_batch_bytes: Some(1024),
        max_buffered_bytes: 2048,
        ..default_limits()
    };
    let (mut app, _rx) = interactive(limits);
    let expected = vec![
        Control::SetInterval {
            interval_us: 10_000,
        },
        Control::SetMaxBufferedBytes { bytes: 64 << 20 },
        Control::SetMaxBatchBytes {
            bytes: Some(32 * 1024),
        },
    ];
    assert_eq!(app.on_key(char('r')), Action::Send(expected));
    assert_eq!(app.limits(), Some(&default_limits()));
    assert_eq!(app.on_key(char('r')), Action::None);
    assert_eq!(
        app.status(),
        Some("limits already at their starting values")
    );
}

#[test]
fn r_restores_what_the_user_changed() {
    let (mut app, _rx) = interactive(default_limits());
    select(&mut app, Knob::Rate);
    app.on_key(char('-'));
    select(&mut app, Knob::ConsumerDelay);
    app.on_key(char('-'));
    let expected = vec![
        Control::SetRate { per_sec: None },
        Control::SetConsumerDelay { delay_us: 200 },
    ];
    assert_eq!(app.on_key(char('r')), Action::Send(expected));
}

#[test]
fn p_pauses_and_resumes() {
    let (mut app, _rx) = interactive(default_limits());
    assert_eq!(app.on_key(char('p')), Action::Send(vec![Control::Pause]));
    assert_eq!(app.run_state(), RunState::Paused);
    assert_eq!(app.on_key(char('p')), Action::Send(vec![Control::Resume]));
    assert!(!app.is_paused());
}

#[test]
fn q_stops_an_interactive_run_then_leaves() {
    let (mut app, _rx) = interactive(default_limits());
    assert_eq!(app.on_key(char('q')), Action::Send(vec![Control::Stop]));
    assert_eq!(app.run_state(), RunState::Stopping);
    assert_eq!(app.on_key(char('+')), Action::None);
    assert_eq!(app.status(), Some("the run is ending: no more changes"));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), Action::Interrupt);
    // Without an interrupt to raise, Ctrl-C is `q`: a second one leaves.
    assert_eq!(app.quit(), Action::Quit);
}

#[test]
fn key_releases_are_ignored() {
    let (mut app, _rx) = interactive(default_limits());
    let mut release = char('-');
    release.kind = KeyEventKind::Release;
    assert_eq!(app.on_key(release), Action::None);
    assert_eq!(app.limits(), Some(&default_limits()));
}

#[test]
fn read_only_mode_sends_nothing_and_says_why() {
    let options = DashboardOptions::new("/nonexistent/samples.jsonl");
    let mut app = App::new(&options);
    app.on_line(sample(1.0).into());
    for k in [
        char('+'),
        char('-'),
        key(KeyCode::Left),
        char('r'),
        char('p'),
    ] {
        assert_eq!(app.on_key(k), Action::None);
        assert_eq!(app.status(), Some(READ_ONLY_MESSAGE));
    }
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_knob(), Knob::MaxBatchBytes);
    assert_eq!(app.on_key(char('q')), Action::Quit);
}

#[test]
fn s_saves_a_scenario_that_soak_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = ScenarioConfig {
        producers: 4,
        duration_s: 30.0,
        ..ScenarioConfig::default()
    };
    let (tx, _rx) = sync_channel(16);
    let options = DashboardOptions::new(dir.path().join("samples.jsonl"))
        .with_scenario(scenario.clone())
        .with_controls(tx);
    let mut app = App::new(&options);
    app.on_line(sample(1.0).into());
    app.on_key(char('+')); // interval 20 ms
    select(&mut app, Knob::MaxBatchBytes);
    app.on_key(char('-')); // 16 KiB

    assert_eq!(app.on_key(char('s')), Action::None);
    let path = dir.path().join("tuned-1.toml");
    let saved = ScenarioConfig::from_toml_file(&path).expect("parses and validates");
    saved.validate().expect("valid");
    let expected = ScenarioConfig {
        interval_us: 20_000,
        max_batch_bytes: Some(16 * 1024),
        ..scenario
    };
    assert_eq!(saved, expected);
    let last = app.log().last().expect("logged");
    assert_eq!(last.kind, LogKind::Info);
    assert!(
        last.text.contains(&path.display().to_string()),
        "{}",
        last.text
    );
    assert!(
        last.text.contains("rerun with cargo soak --config"),
        "{}",
        last.text
    );

    app.on_key(char('s'));
    assert!(
        dir.path().join("tuned-2.toml").exists(),
        "a second save never overwrites"
    );
}

#[test]
fn s_without_a_scenario_merges_into_the_defaults_even_read_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = App::new(&DashboardOptions::new(dir.path().join("samples.jsonl")));
    let limits = Limits {
        max_batch_bytes: None,
        ..default_limits()
    };
    app.on_line(
        runlog::Sample {
            limits,
            ..sample(1.0)
        }
        .into(),
    );
    app.on_key(char('s'));
    let saved = ScenarioConfig::from_toml_file(&dir.path().join("tuned-1.toml")).expect("parses");
    assert_eq!(saved.max_batch_bytes, None);
    assert!(
        app.status().unwrap_or("").contains("scenario unknown"),
        "{:?}",
        app.status()
    );
}

#[test]
fn a_sent_change_survives_a_sample_written_before_the_soak_applied_it() {
    let (mut app, _rx) = interactive(default_limits());
    app.on_key(char('-'));
    app.on_key(char('p'));
    // Written before the soak read the commands: old values.
    app.on_line(sample(1.5).into());
    assert_eq!(app.limits().map(|l| l.interval_us), Some(5_000));
    assert!(app.is_paused());
    // The soak's events confirm them; from then on samples carry the values.
    for (knob, to) in [("interval_us", "5000"), ("producers", "paused")] {
        let kind = runlog::EventKind::Reconfigure {
            knob: knob.into(),
            from: String::new(),
            to: to.into(),
            source: "control".into(),
        };
        app.on_line(runlog::Event::new(1.6, kind).into());
    }
    let confirmed = runlog::Sample {
        limits: Limits {
            interval_us: 5_000,
            ..default_limits()
        },
        paused: true,
        ..sample(2.0)
    };
    app.on_line(confirmed.into());
    assert_eq!(
        app.on_key(char('-')),
        Action::Send(vec![Control::SetInterval { interval_us: 2_500 }])
    );
}

#[test]
fn doubling_stops_at_the_same_bounds_as_the_command_line() {
    let limits = Limits {
        max_buffered_bytes: runlog::bounds::MAX_BUFFERED_BYTES,
        interval_us: runlog::bounds::MAX_INTERVAL_US,
        ..default_limits()
    };
    let (mut app, _rx) = interactive(limits);
    assert_eq!(app.on_key(char('+')), Action::None, "interval at its bound");
    select(&mut app, Knob::MaxBufferedBytes);
    assert_eq!(app.on_key(char('+')), Action::None, "buffered at its bound");
    assert!(
        app.status().unwrap_or("").contains("max buffered 2.0 TiB"),
        "{:?}",
        app.status()
    );
}

#[test]
fn the_save_hint_names_the_program_as_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tx, _rx) = sync_channel(16);
    let options = DashboardOptions::new(dir.path().join("samples.jsonl"))
        .with_scenario(ScenarioConfig::default())
        .with_controls(tx)
        .with_program("soak");
    let mut app = App::new(&options);
    app.on_line(sample(1.0).into());
    app.on_key(char('s'));
    let last = app.log().last().expect("logged");
    assert!(
        last.text.contains(": rerun with soak --config "),
        "{}",
        last.text
    );
}
