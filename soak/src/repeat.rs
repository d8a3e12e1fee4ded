//! `cargo soak --repeat N`: the scenario run N times into one group directory, each run a
//! complete run directory inside it, and `group.json` listing them with a summary.

use std::process::ExitCode;
use std::sync::Arc;

use runlog::{GroupRecord, GroupRun, RunDir, ScenarioConfig};

use crate::app::{EXIT_FAIL, EXIT_PASS, EXIT_RECORD_INCOMPLETE, EXIT_USAGE};
use crate::cli::Cli;
use crate::human;
use crate::progress::Progress;
use crate::run::{RunError, RunOptions, prepare};
use crate::signals::Interrupt;

/// Runs `config` `n` times into a new group under `--out`. Exit code: the worst of the
/// runs' (1 if any failed, 3 if any record is incomplete), 128 + a signal that cut it
/// short (the remaining runs are not started), 2 for bad input.
pub fn run_group(
    cli: &Cli,
    config: &ScenarioConfig,
    n: u32,
    interrupt: Option<Arc<Interrupt>>,
) -> ExitCode {
    if let Err(err) = check(cli, config) {
        crate::errln!("{}: {err}", crate::program::name());
        return ExitCode::from(EXIT_USAGE);
    }
    let group_id = runlog::new_run_id();
    let group_dir = match RunDir::create(&cli.out_dir(), &group_id) {
        Ok(dir) => dir,
        Err(err) => {
            crate::errln!("{}: {}: {err}", crate::program::name(), cli.out_label());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut group = GroupRecord::new(&group_id, &runlog::now_rfc3339(), config.clone(), n);
    if let Err(err) = runlog::write_group(group_dir.path(), &group) {
        crate::errln!("{}: cannot write group.json: {err}", crate::program::name());
        return ExitCode::from(EXIT_FAIL);
    }
    let mut code = EXIT_PASS;
    for i in 1..=n {
        let outcome = match run_one(cli, config, &group_dir, interrupt.clone(), (i, n)) {
            Ok(outcome) => outcome,
            Err(code) => return code,
        };
        group.push(GroupRun::of(&outcome.results));
        if let Err(err) = runlog::write_group(group_dir.path(), &group) {
            crate::errln!("{}: cannot write group.json: {err}", crate::program::name());
            code = code.max(EXIT_RECORD_INCOMPLETE);
        }
        let overall = outcome.results.assessment.overall;
        code = code.max(if outcome.incomplete.is_some() {
            EXIT_RECORD_INCOMPLETE
        } else {
            crate::app::verdict_code(overall, cli.fail_on_warn)
        });
        if let Some(caught) = interrupt.as_deref().and_then(Interrupt::caught) {
            crate::errln!(
                "{}: the group was cut short by {} after {i} of {n} runs; exit code {}",
                crate::program::name(),
                caught.name(),
                caught.exit_code()
            );
            print_group(cli, &group, &group_dir);
            return ExitCode::from(caught.exit_code());
        }
    }
    print_group(cli, &group, &group_dir);
    ExitCode::from(code)
}

/// Run `i` of `n` into the group, its report, and its verdict line; the exit code when it
/// could not run.
fn run_one(
    cli: &Cli,
    config: &ScenarioConfig,
    group_dir: &RunDir,
    interrupt: Option<Arc<Interrupt>>,
    (i, n): (u32, u32),
) -> Result<crate::run::RunOutcome, ExitCode> {
    crate::errln!(
        "{}: run {i} of {n} into group {}",
        crate::program::name(),
        group_dir.path().display()
    );
    let options = RunOptions {
        interrupt,
        out_label: Some(cli.out_label()),
        sink: cli.sink_spec(),
        ..RunOptions::new(group_dir.path())
    };
    let outcome = prepare(config, &options)
        .and_then(|prepared| prepared.run(&mut Progress::new(cli.quiet), None));
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err @ (RunError::Input(_) | RunError::Interrupted(_))) => {
            crate::errln!("{}: {err}", crate::program::name());
            return Err(ExitCode::from(err.exit_code()));
        }
        Err(err) => {
            crate::errln!("{}: run {i} failed: {err}", crate::program::name());
            return Err(ExitCode::from(err.exit_code()));
        }
    };
    if let Err(err) = crate::records::write_report(outcome.dir.path()) {
        crate::errln!("{}: warning: no report: {err}", crate::program::name());
    }
    let r = &outcome.results;
    crate::errln!(
        "{}: run {i} of {n} {}: {} delivered/s, p99 {}, peak heap {}",
        crate::program::name(),
        r.assessment.overall.as_str().to_uppercase(),
        human::count(r.throughput.avg_delivered_per_sec),
        human::micros(r.latency_us.p99),
        human::bytes(r.memory.peak_heap_bytes),
    );
    Ok(outcome)
}

/// What every run would refuse, checked before the group directory exists: the payload,
/// the machine's limits and the output directory.
fn check(cli: &Cli, config: &ScenarioConfig) -> Result<(), String> {
    let spec: loadgen::PayloadSpec = config
        .payload
        .parse()
        .map_err(|e| format!("--payload: {e}"))?;
    let payload = loadgen::PayloadSource::load(&spec).map_err(|e| format!("--payload: {e}"))?;
    crate::checks::before_run(config, &payload, &cli.out_dir()).map_err(|e| {
        e.replace(
            &format!("--out {}", cli.out_dir().display()),
            &cli.out_label(),
        )
    })
}

/// The group's summary (or group.json with `--json`) and where it is.
fn print_group(cli: &Cli, group: &GroupRecord, dir: &RunDir) {
    if cli.json {
        match serde_json::to_string_pretty(group) {
            Ok(json) => crate::outln!("{json}"),
            Err(err) => crate::errln!("{}: cannot print group.json: {err}", crate::program::name()),
        }
        return;
    }
    let s = &group.summary;
    let spread = |sp: &runlog::Spread, show: &dyn Fn(f64) -> String| {
        format!(
            "{} (min {}, max {})",
            show(sp.median),
            show(sp.min),
            show(sp.max)
        )
    };
    crate::outln!(
        "soak group {}: {} runs ({} passed, {} warned, {} failed)\n  delivered/s  {}\n  p99          {}\n  peak heap    {}\n  group dir    {}",
        group.group_id,
        group.runs.len(),
        s.passed,
        s.warned,
        s.failed,
        spread(&s.delivered_per_sec, &human::count),
        spread(&s.latency_p99_us, &|v| human::micros(v as u64)),
        spread(&s.peak_heap_bytes, &|v| human::bytes(v as u64)),
        dir.path().display(),
    );
}
