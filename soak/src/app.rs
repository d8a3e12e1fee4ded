//! From parsed arguments to an exit code.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use runlog::Status;

use crate::cli::{Cli, Command};
use crate::live;
use crate::progress::Progress;
use crate::records;
use crate::run::{RunError, RunOptions, RunOutcome, prepare};
use crate::scenario;
use crate::signals::Interrupt;
use crate::tune::{self, TuneOptions};

// The exit codes, every subcommand alike. Errors map to them in one place each:
// `RunError::exit_code` and `TuneError::exit_code`; a signal is 128 + its number
// (`signals::Caught::exit_code`).

/// Exit code for a run whose assessment passed or warned.
pub const EXIT_PASS: u8 = 0;
/// Exit code for a run whose assessment failed, or that broke down.
pub const EXIT_FAIL: u8 = 1;
/// Exit code for bad arguments or input (nothing is created).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for an I/O or environment failure: an output could not be written (a full
/// disk). A run that ran still prints its verdict (`results.json` or `report.html` is
/// missing); `compare` still prints its verdicts.
pub const EXIT_RECORD_INCOMPLETE: u8 = 3;
/// The same code as [`EXIT_RECORD_INCOMPLETE`], by the name of what it is for.
pub const EXIT_IO: u8 = EXIT_RECORD_INCOMPLETE;

/// Runs what the command line asks for and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    crate::logging::init(cli.log_level());
    // One handler for every subcommand: a run drains on a signal, anything else gives the
    // terminal back and ends by it.
    let interrupt = match crate::signals::install() {
        Ok(interrupt) => Some(interrupt),
        Err(err) => {
            crate::errln!(
                "{}: warning: signals will end the process at once: {err}",
                crate::program::name()
            );
            None
        }
    };
    let code = command(&cli, interrupt);
    // What was printed is part of the answer: a verdict its reader never got is no success.
    match crate::output::stdout_lost() {
        Some(why) if code == ExitCode::from(EXIT_PASS) || code == ExitCode::from(EXIT_FAIL) => {
            crate::errln!(
                "{}: stdout could not be written: {why}",
                crate::program::name()
            );
            ExitCode::from(EXIT_IO)
        }
        _ => code,
    }
}

/// Runs the subcommand `cli` names.
fn command(cli: &Cli, interrupt: Option<Arc<Interrupt>>) -> ExitCode {
    match &cli.command {
        None => soak(cli, interrupt),
        Some(Command::Report { run_dir }) => records::report(run_dir.as_deref()),
        Some(Command::Export { run_dir, csv: _ }) => crate::export::csv(run_dir.as_deref()),
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
        Some(Command::CrashTest {
            scenario,
            kills,
            out,
            no_write_ahead,
        }) => crash_test(scenario, *kills, out.as_deref(), *no_write_ahead, interrupt),
        Some(Command::Completions { shell }) => {
            print_generated(|out| crate::cli::completions(*shell, out))
        }
        Some(Command::Man) => print_generated(crate::cli::man),
        Some(Command::Tune {
            scenario,
            sink,
            budget,
            latency_target,
            out,
            quiet,
            json,
        }) => {
            let base = match tune::scenario(scenario) {
                Ok(base) => base,
                Err(err) => {
                    crate::errln!("{} tune: {err}", crate::program::name());
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
                typed: scenario.typed.clone(),
                interrupt,
            };
            tune_command(&options, *json)
        }
    }
}

/// `soak completions` and `soak man`: what `write` generates, to stdout. Like every
/// print, a closed pipe (`soak man | head`) ends quietly and any other write error exits
/// [`EXIT_IO`] (see `crate::output`).
fn print_generated(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    crate::output::kept(write(&mut stdout).and_then(|()| stdout.flush()));
    ExitCode::from(EXIT_PASS)
}

/// `soak tune`: exit 0 with a recommendation, 1 when nothing was healthy; the result as
/// text, or as `metronome.tune/1` JSON with `json`.
fn tune_command(options: &TuneOptions, json: bool) -> ExitCode {
    let result = tune::tune(options);
    if let Some(caught) = options.interrupt.as_deref().and_then(Interrupt::caught) {
        crate::errln!(
            "{} tune: cut short by {}: the search did not finish, so no tuned.toml was written \
             (a previous one is left as it was); the probing run drained and wrote its record; \
             exit code {}",
            crate::program::name(),
            caught.name(),
            caught.exit_code()
        );
        return ExitCode::from(caught.exit_code());
    }
    match result {
        Ok(report) => {
            if json {
                let doc = tune::json::TuneJson::new(&report, options.budget.as_secs_f64());
                match doc.to_string_pretty() {
                    Ok(text) => crate::outln!("{text}"),
                    Err(err) => {
                        crate::errln!("{} tune: cannot print JSON: {err}", crate::program::name());
                        return ExitCode::from(EXIT_FAIL);
                    }
                }
            } else {
                crate::out!("{}", tune::output::render(&report, options.quiet));
            }
            ExitCode::from(if report.recommendation.is_some() {
                EXIT_PASS
            } else {
                EXIT_FAIL
            })
        }
        Err(err) => {
            crate::errln!("{} tune: {err}", crate::program::name());
            ExitCode::from(err.exit_code())
        }
    }
}

/// `soak crash-test`: exit 0 when nothing accepted was lost, 1 when something was (or a
/// child failed the test), 2 for bad input, 3 when its files cannot be written.
fn crash_test(
    scenario: &crate::cli::ScenarioArgs,
    kills: u32,
    out: Option<&std::path::Path>,
    no_write_ahead: bool,
    interrupt: Option<Arc<Interrupt>>,
) -> ExitCode {
    let name = crate::program::name();
    let config = match crate::crash::scenario(scenario, no_write_ahead) {
        Ok(config) => config,
        Err(err) => {
            crate::errln!("{name} crash-test: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = crate::crash::CrashOptions {
        config,
        kills,
        out: crate::cli::out_dir(out),
        out_label: crate::cli::out_label(out),
        interrupt,
    };
    match crate::crash::crash_test(&options) {
        Ok(outcome) => {
            let colour = runlog::human::colour(std::io::stdout().is_terminal());
            crate::outln!("{}", crate::crash::render(&outcome, colour));
            if let Some(why) = &outcome.last_output_error {
                crate::errln!("{name} crash-test: {why}; exit code {EXIT_IO}");
                return ExitCode::from(EXIT_IO);
            }
            ExitCode::from(if outcome.passed() {
                EXIT_PASS
            } else {
                EXIT_FAIL
            })
        }
        Err(err) => {
            crate::errln!("{name} crash-test: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// A soak run: resolve the scenario, run it, write its report, summarize.
fn soak(cli: &Cli, interrupt: Option<Arc<Interrupt>>) -> ExitCode {
    let config = match scenario::resolve(&cli.scenario) {
        Ok(config) => config,
        Err(err) => {
            crate::errln!("{}: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    tracing::debug!(
        "scenario resolved: {}",
        crate::progress::scenario_line(&config)
    );
    for warning in scenario::warnings(&cli.scenario, &config) {
        crate::errln!("{}: warning: {warning}", crate::program::name());
    }
    if let Some(path) = &cli.summary_md {
        if let Err(why) = writable_file(path) {
            crate::errln!(
                "{}: --summary-md {}: {why}",
                crate::program::name(),
                path.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    }
    // A crash test's child run writes down what it accepts and delivers.
    let witness = match crate::crash::witness::Witness::from_env() {
        None => None,
        Some(Ok(witness)) => Some(witness),
        Some(Err(err)) => {
            crate::errln!("{}: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let tui = cli.repeat.is_none() && live::wanted(cli.tui, cli.no_tui, cli.json);
    if let Some(n) = cli.repeat {
        return crate::repeat::run_group(cli, &config, n, interrupt);
    }
    let options = RunOptions {
        metrics_addr: cli.metrics_addr,
        sink: cli.sink_spec(),
        interrupt: interrupt.clone(),
        out_label: Some(cli.out_label()),
        witness,
        ..RunOptions::new(cli.out_dir())
    };
    let outcome = prepare(&config, &options).and_then(|prepared| {
        if let Some(addr) = prepared.metrics_addr() {
            let exposed = if addr.ip().is_loopback() {
                ""
            } else {
                " (reachable from the network)"
            };
            crate::errln!(
                "{}: metrics at http://{addr}/metrics{exposed}",
                crate::program::name()
            );
        }
        if tui {
            live::run_with_dashboard(prepared, cli.fps)
        } else {
            prepared.run(&mut Progress::new(cli.quiet), None)
        }
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            match &err {
                RunError::Input(_) | RunError::Interrupted(_) => {
                    crate::errln!("{}: {err}", crate::program::name())
                }
                _ => crate::errln!("{}: run failed: {err}", crate::program::name()),
            }
            let code = interrupt
                .as_deref()
                .and_then(Interrupt::caught)
                .map_or_else(|| err.exit_code(), |caught| caught.exit_code());
            return ExitCode::from(code);
        }
    };
    finish(cli, outcome, interrupt.as_deref())
}

/// The report, the summary and the exit code of a run that ran.
fn finish(cli: &Cli, mut outcome: RunOutcome, interrupt: Option<&Interrupt>) -> ExitCode {
    match records::write_report(outcome.dir.path()) {
        Ok(path) => crate::errln!("{}: report {}", crate::program::name(), path.display()),
        Err(err) => {
            crate::errln!("{}: warning: no report: {err}", crate::program::name());
            outcome
                .incomplete
                .get_or_insert(format!("no report: {err}"));
        }
    }
    // The summary goes to stderr beside --json's record, to stdout otherwise: coloured
    // only if that stream is a terminal.
    let terminal = if cli.json {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let colour = runlog::human::colour(terminal);
    let text = crate::summary::summary(&outcome.results, &outcome.dir, colour);
    if cli.json {
        crate::errln!("{text}");
        match serde_json::to_string_pretty(&outcome.results) {
            Ok(json) => crate::outln!("{json}"),
            Err(err) => {
                crate::errln!("{}: cannot print results: {err}", crate::program::name());
                return ExitCode::from(EXIT_FAIL);
            }
        }
    } else {
        crate::outln!("{text}");
    }
    if let Some(path) = &cli.summary_md {
        let md = crate::summary_md::markdown(&outcome.results, &outcome.dir);
        if let Err(err) = runlog::write_atomically(path, md.as_bytes()) {
            outcome
                .incomplete
                .get_or_insert(format!("--summary-md {}: {err}", path.display()));
        }
    }
    // Taken by the run before its record was written (a signal since then ends the
    // process by its default action: see `crate::signals`).
    if let Some(caught) = interrupt.and_then(Interrupt::caught) {
        crate::errln!(
            "{}: the run was cut short by {}; exit code {}",
            crate::program::name(),
            caught.name(),
            caught.exit_code()
        );
        return ExitCode::from(caught.exit_code());
    }
    if let Some(why) = &outcome.incomplete {
        crate::errln!(
            "{}: the run's record is incomplete ({why}); exit code {EXIT_RECORD_INCOMPLETE}",
            crate::program::name()
        );
        return ExitCode::from(EXIT_RECORD_INCOMPLETE);
    }
    ExitCode::from(verdict_code(
        outcome.results.assessment.overall,
        cli.fail_on_warn,
    ))
}

/// Whether a file can be written at `path`: its directory exists and it is not something
/// other than a regular file (a directory, a FIFO, a device). Checked before a run, so a
/// typo costs nothing.
fn writable_file(path: &std::path::Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("{} is not a directory", parent.display()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => Err("not a regular file".to_owned()),
        _ => Ok(()),
    }
}

/// The exit code of a verdict: 1 for FAIL (and for WARN with `--fail-on-warn`), else 0.
pub(crate) fn verdict_code(overall: Status, fail_on_warn: bool) -> u8 {
    match overall {
        Status::Fail => EXIT_FAIL,
        Status::Warn if fail_on_warn => EXIT_FAIL,
        Status::Pass | Status::Warn => EXIT_PASS,
    }
}
