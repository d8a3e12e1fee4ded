//! From parsed arguments to an exit code.

use std::process::ExitCode;

use runlog::Status;

use crate::cli::{Cli, Command};
use crate::live;
use crate::progress::{Progress, summary};
use crate::records;
use crate::run::{RunError, RunOptions, RunOutcome, prepare};
use crate::scenario;
use crate::tune::{self, TuneError, TuneOptions};

/// Exit code for a run whose assessment passed or warned.
pub const EXIT_PASS: u8 = 0;
/// Exit code for a run whose assessment failed, or that broke down.
pub const EXIT_FAIL: u8 = 1;
/// Exit code for bad arguments or input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run that ran (its verdict is printed) but whose record could not be
/// written whole (`results.json` or `report.html`).
pub const EXIT_RECORD_INCOMPLETE: u8 = 3;

/// Runs what the command line asks for and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match &cli.command {
        None => soak(&cli),
        Some(Command::Report { run_dir }) => records::report(run_dir.as_deref()),
        Some(Command::Compare {
            base,
            candidate,
            noise,
            primary,
            force,
            fail_on_regression,
            format,
            json,
            output,
        }) => records::compare(&records::CompareArgs {
            base: base.clone(),
            candidate: candidate.clone(),
            noise_pct: *noise,
            primary: primary.clone(),
            force: *force,
            fail_on_regression: *fail_on_regression,
            format: if *json {
                crate::cli::CompareFormat::Json
            } else {
                *format
            },
            output: output.clone(),
        }),
        Some(Command::Watch { run_dir, fps }) => live::watch(run_dir.as_deref(), *fps),
        Some(Command::Tune {
            scenario,
            sink,
            budget,
            latency_target,
            out,
            quiet,
        }) => {
            let base = match tune::scenario(scenario) {
                Ok(base) => base,
                Err(err) => {
                    crate::errln!("soak tune: {err}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let options = TuneOptions {
                base,
                sink: sink.spec(),
                budget: *budget,
                latency_target: *latency_target,
                out: crate::cli::out_dir(out.as_deref()),
                runs_out: crate::cli::out_dir(out.as_deref()),
                out_label: crate::cli::out_label(out.as_deref()),
                quiet: *quiet,
            };
            tune_command(&options)
        }
    }
}

/// `soak tune`: exit 0 with a recommendation, 1 when nothing was healthy.
fn tune_command(options: &TuneOptions) -> ExitCode {
    match tune::tune(options) {
        Ok(report) => {
            crate::out!("{}", tune::output::render(&report, options.quiet));
            ExitCode::from(if report.recommendation.is_some() {
                EXIT_PASS
            } else {
                EXIT_FAIL
            })
        }
        Err(err @ (TuneError::Input(_) | TuneError::Run(RunError::Input(_)))) => {
            crate::errln!("soak tune: {err}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(err) => {
            crate::errln!("soak tune: {err}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

/// A soak run: resolve the scenario, run it, write its report, summarize.
fn soak(cli: &Cli) -> ExitCode {
    let config = match scenario::resolve(&cli.scenario) {
        Ok(config) => config,
        Err(err) => {
            crate::errln!("soak: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in scenario::warnings(&cli.scenario, &config) {
        crate::errln!("soak: warning: {warning}");
    }
    let tui = cli.repeat.is_none() && live::wanted(cli.tui, cli.no_tui, cli.json);
    let interrupt = match crate::signals::install(tui) {
        Ok(interrupt) => Some(interrupt),
        Err(err) => {
            crate::errln!("soak: warning: signals will end the run at once: {err}");
            None
        }
    };
    if let Some(n) = cli.repeat {
        return crate::repeat::run_group(cli, &config, n, interrupt);
    }
    let options = RunOptions {
        metrics_addr: cli.metrics_addr,
        sink: cli.sink_spec(),
        interrupt: interrupt.clone(),
        out_label: Some(cli.out_label()),
        ..RunOptions::new(cli.out_dir())
    };
    let outcome = prepare(&config, &options).and_then(|prepared| {
        if let Some(addr) = prepared.metrics_addr() {
            let exposed = if addr.ip().is_loopback() {
                ""
            } else {
                " (reachable from the network)"
            };
            crate::errln!("soak: metrics at http://{addr}/metrics{exposed}");
        }
        if tui {
            live::run_with_dashboard(prepared, cli.fps)
        } else {
            prepared.run(&mut Progress::new(cli.quiet), None)
        }
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err @ RunError::Input(_)) => {
            crate::errln!("soak: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(err) => {
            crate::errln!("soak: run failed: {err}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    finish(cli, outcome, interrupt.and_then(|i| i.caught()))
}

/// The report, the summary and the exit code of a run that ran.
fn finish(cli: &Cli, mut outcome: RunOutcome, signal: Option<crate::signals::Caught>) -> ExitCode {
    match records::write_report(outcome.dir.path()) {
        Ok(path) => crate::errln!("soak: report {}", path.display()),
        Err(err) => {
            crate::errln!("soak: warning: no report: {err}");
            outcome
                .incomplete
                .get_or_insert(format!("no report: {err}"));
        }
    }
    let text = summary(&outcome.results, &outcome.dir);
    if cli.json {
        crate::errln!("{text}");
        match serde_json::to_string_pretty(&outcome.results) {
            Ok(json) => crate::outln!("{json}"),
            Err(err) => {
                crate::errln!("soak: cannot print results: {err}");
                return ExitCode::from(EXIT_FAIL);
            }
        }
    } else {
        crate::outln!("{text}");
    }
    if let Some(caught) = signal {
        crate::errln!(
            "soak: the run was cut short by {}; exit code {}",
            caught.name(),
            caught.exit_code()
        );
        return ExitCode::from(caught.exit_code());
    }
    if let Some(why) = &outcome.incomplete {
        crate::errln!(
            "soak: the run's record is incomplete ({why}); exit code {EXIT_RECORD_INCOMPLETE}"
        );
        return ExitCode::from(EXIT_RECORD_INCOMPLETE);
    }
    match outcome.results.assessment.overall {
        Status::Pass | Status::Warn => ExitCode::from(EXIT_PASS),
        Status::Fail => ExitCode::from(EXIT_FAIL),
    }
}
