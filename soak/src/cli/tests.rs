use super::*;

#[test]
fn the_cli_definition_is_consistent() {
    command_for("soak").debug_assert();
}

#[test]
fn bare_invocation_uses_every_default() {
    let cli = Cli::try_parse_from(["soak"]).expect("parses");
    assert!(cli.scenario.duration.is_none() && cli.scenario.preset.is_none());
    assert_eq!(cli.out_dir(), PathBuf::from("target/soak"));
}

#[test]
fn units_parse_on_the_command_line() {
    let cli = Cli::try_parse_from([
        "soak",
        "--duration",
        "2m",
        "--max-buffered-bytes",
        "64MiB",
        "--max-batch-bytes",
        "none",
        "--rate",
        "200k/s",
        "--consumer-delay",
        "200us",
        "--policy",
        "drop-oldest",
    ])
    .expect("parses");
    let s = cli.scenario;
    assert_eq!(s.duration, Some(Duration::from_secs(120)));
    assert_eq!(s.max_buffered_bytes, Some(64 << 20));
    assert_eq!(s.max_batch_bytes, Some(Limit(None)));
    assert_eq!(s.rate, Some(Rate::PerSecond(200_000)));
    assert_eq!(s.consumer_delay, Some(Duration::from_micros(200)));
    assert_eq!(s.policy, Some(PolicyArg::DropOldest));
}

#[test]
fn a_bad_value_names_the_flag() {
    let err = Cli::try_parse_from(["soak", "--max-buffered-bytes", "lots"]).unwrap_err();
    assert!(err.to_string().contains("--max-buffered-bytes"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn subcommands_parse_and_exclude_run_flags() {
    let cli = Cli::try_parse_from([
        "soak",
        "compare",
        "a",
        "b",
        "--threshold",
        "2.5%",
        "--fail-on-regression",
        "--primary",
        "p99,delivered_per_sec",
        "--format",
        "md",
    ])
    .expect("parses");
    match cli.command {
        Some(Command::Compare {
            noise,
            fail_on_regression,
            force,
            primary,
            format,
            ..
        }) => {
            assert_eq!((noise, fail_on_regression, force), (Some(2.5), true, false));
            assert_eq!(primary, ["p99", "delivered_per_sec"]);
            assert_eq!(format, CompareFormat::Md);
        }
        other => panic!("expected compare, got {other:?}"),
    }
    assert!(Cli::try_parse_from(["soak", "--duration", "5s", "report"]).is_err());
    let cli = Cli::try_parse_from(["soak", "watch"]).expect("parses");
    assert!(matches!(
        cli.command,
        Some(Command::Watch {
            run_dir: None,
            fps: 10
        })
    ));
    assert!(Cli::try_parse_from(["soak", "compare", "a", "b", "--threshold", "lots"]).is_err());
}

#[test]
fn the_metrics_address_is_off_unless_given() {
    let cli = Cli::try_parse_from(["soak"]).expect("parses");
    assert_eq!(cli.metrics_addr, None);
    let cli = Cli::try_parse_from(["soak", "--metrics-addr", "0.0.0.0:9464"]).expect("parses");
    assert_eq!(cli.metrics_addr, Some("0.0.0.0:9464".parse().unwrap()));
    let err = Cli::try_parse_from(["soak", "--metrics-addr", "9464"]).unwrap_err();
    assert!(err.to_string().contains("--metrics-addr"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn a_sink_replaces_the_simulated_consumer() {
    let cli = Cli::try_parse_from(["soak", "--sink", "nats://127.0.0.1:4222"]).expect("parses");
    assert_eq!(
        cli.sink_spec().describe(),
        "nats://127.0.0.1:4222 metronome.events"
    );
    let err = Cli::try_parse_from(["soak", "--sink", "http://x"]).unwrap_err();
    assert!(err.to_string().contains("--sink"), "{err}");
    let err = Cli::try_parse_from(["soak", "--subject", "a.b"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    let err = Cli::try_parse_from(["soak", "--sink", "nats://h:1", "--consumer-delay", "1ms"])
        .unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    assert_eq!(
        Cli::try_parse_from(["soak"]).expect("parses").sink_spec(),
        SinkSpec::InProcess
    );
}

#[test]
fn repeat_takes_a_count_in_range_and_no_dashboard() {
    let cli = Cli::try_parse_from(["soak", "--repeat", "5"]).expect("parses");
    assert_eq!(cli.repeat, Some(5));
    let err = Cli::try_parse_from(["soak", "--repeat", "0"]).unwrap_err();
    assert!(err.to_string().contains("--repeat"), "{err}");
    assert!(err.to_string().contains("1..=1000"), "{err}");
    let err = Cli::try_parse_from(["soak", "--repeat", "2", "--tui"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    let err = Cli::try_parse_from(["soak", "--repeat", "2", "--metrics-addr", "127.0.0.1:0"])
        .unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn verbosity_counts_and_a_level_is_named() {
    let level = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.log_level());
    assert_eq!(level(&["soak"]).unwrap(), LogLevel::Warn);
    assert_eq!(level(&["soak", "-v"]).unwrap(), LogLevel::Debug);
    assert_eq!(level(&["soak", "-vv"]).unwrap(), LogLevel::Trace);
    assert_eq!(
        level(&["soak", "--log-level", "info"]).unwrap(),
        LogLevel::Info
    );
    assert_eq!(
        level(&["soak", "compare", "a", "b", "-v"]).unwrap(),
        LogLevel::Debug
    );
    let err = level(&["soak", "--log-level", "loud"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.contains("loud") && text.contains("--log-level"),
        "{text}"
    );
    assert!(text.contains("error, warn, info, debug, trace"), "{text}");
}

#[test]
fn preset_and_config_exclude_each_other() {
    let err = Cli::try_parse_from(["soak", "--preset", "quick", "--config", "x.toml"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
}
