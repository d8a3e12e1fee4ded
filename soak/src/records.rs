//! The subcommands that work on recorded runs: `report` and `compare`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reports::{CompareError, CompareOptions, Verdict};
use runlog::RunDir;

use crate::app::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use crate::cli::DEFAULT_OUT;

/// The run directory named, or the newest under the default output directory.
///
/// # Errors
///
/// The record's error if it is not a run directory (or there is no latest run).
pub fn resolve_run(run_dir: Option<&Path>) -> Result<RunDir, runlog::RunlogError> {
    match run_dir {
        Some(dir) => RunDir::open(dir),
        None => RunDir::resolve_latest(Path::new(DEFAULT_OUT)),
    }
}

fn resolve(run_dir: Option<&Path>) -> Result<PathBuf, String> {
    resolve_run(run_dir)
        .map(|dir| dir.path().to_path_buf())
        .map_err(|e| e.to_string())
}

/// Writes `report.html` for a run; warnings about a damaged record go to
/// stderr. Used at the end of every run and by `soak report`.
///
/// # Errors
///
/// The report's error, as text naming the file.
pub fn write_report(dir: &Path) -> Result<PathBuf, String> {
    let rendered = reports::render_run(dir).map_err(|e| e.to_string())?;
    for warning in &rendered.warnings {
        crate::errln!("soak: warning: {warning}");
    }
    Ok(rendered.path)
}

/// `soak report [RUN_DIR]`: exit 2 for something that is not a run record, 1 when the
/// report cannot be written (the previous report, if any, is left whole).
pub fn report(run_dir: Option<&Path>) -> ExitCode {
    let dir = match resolve(run_dir) {
        Ok(dir) => dir,
        Err(err) => {
            crate::errln!("soak report: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match reports::render_run(&dir) {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                crate::errln!("soak: warning: {warning}");
            }
            crate::outln!("{}", rendered.path.display());
            ExitCode::from(EXIT_PASS)
        }
        Err(err @ reports::ReportError::Write { .. }) => {
            crate::errln!("soak report: {err}");
            ExitCode::from(EXIT_FAIL)
        }
        Err(err) => {
            crate::errln!("soak report: {err}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// What `soak compare` was asked.
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// The run compared against.
    pub base: PathBuf,
    /// The run judged.
    pub candidate: PathBuf,
    /// Percent a metric may worsen before it counts as regressed.
    pub threshold_pct: f64,
    /// Compare different scenarios anyway.
    pub force: bool,
    /// Exit 1 when anything regressed.
    pub fail_on_regression: bool,
    /// Where compare.html goes.
    pub output: Option<PathBuf>,
}

/// `soak compare BASE CANDIDATE`: one line per metric, the page's path, and
/// exit 1 on a regression when asked.
pub fn compare(args: &CompareArgs) -> ExitCode {
    let options = CompareOptions {
        threshold_pct: args.threshold_pct,
        force: args.force,
        output: args.output.clone(),
        overwrite: args.force,
    };
    let comparison = match reports::compare(&args.base, &args.candidate, &options) {
        Ok(c) => c,
        Err(err @ CompareError::Incomparable { .. }) => {
            crate::errln!("soak compare: {err}; use --force to compare anyway");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(
            err @ CompareError::Output {
                overridable: true, ..
            },
        ) if !args.force => {
            crate::errln!("soak compare: {err} (use --force to overwrite it)");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(err) => {
            crate::errln!("soak compare: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for m in &comparison.metrics {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let change = m
            .change_pct
            .map_or_else(|| "-".to_string(), |c| format!("{c:+.2}%"));
        crate::outln!(
            "{:<24} base {:>14}  candidate {:>14}  change {:>9}  {:?}",
            m.key,
            show(m.base),
            show(m.candidate),
            change,
            m.verdict
        );
    }
    if let Some(path) = &comparison.path {
        crate::outln!("{}", path.display());
    }
    if args.fail_on_regression && comparison.overall() == Verdict::Regressed {
        crate::errln!(
            "soak compare: regressed beyond {}%",
            comparison.threshold_pct
        );
        return ExitCode::from(EXIT_FAIL);
    }
    ExitCode::from(EXIT_PASS)
}
