//! The subcommands that work on recorded runs: `report` and `compare`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reports::{CompareError, CompareOptions, compare_text};
use runlog::RunDir;

use crate::app::{EXIT_FAIL, EXIT_IO, EXIT_PASS, EXIT_USAGE};
use crate::cli::{CompareFormat, DEFAULT_OUT};

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
        crate::errln!("{}: warning: {warning}", crate::program::name());
    }
    Ok(rendered.path)
}

/// `soak report [RUN_DIR]`: exit 2 for something that is not a run record, 3 when the
/// report cannot be written (the previous report, if any, is left whole).
pub fn report(run_dir: Option<&Path>) -> ExitCode {
    let dir = match resolve(run_dir) {
        Ok(dir) => dir,
        Err(err) => {
            crate::errln!("{} report: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match reports::render_run(&dir) {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                crate::errln!("{}: warning: {warning}", crate::program::name());
            }
            crate::outln!("{}", rendered.path.display());
            ExitCode::from(EXIT_PASS)
        }
        Err(err @ reports::ReportError::Write { .. }) => {
            crate::errln!("{} report: {err}", crate::program::name());
            ExitCode::from(EXIT_IO)
        }
        Err(err) => {
            crate::errln!("{} report: {err}", crate::program::name());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// What `soak compare` was asked.
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// The run or group compared against.
    pub base: PathBuf,
    /// The run or group judged.
    pub candidate: PathBuf,
    /// One noise threshold for every metric, percent; `None`: each metric's own.
    pub noise_pct: Option<f64>,
    /// The headline's metrics; empty: the defaults.
    pub primary: Vec<String>,
    /// Compare different scenarios anyway.
    pub force: bool,
    /// Exit 1 when a primary metric regressed.
    pub fail_on_regression: bool,
    /// What to print.
    pub format: CompareFormat,
    /// Where compare.html goes.
    pub output: Option<PathBuf>,
}

/// `soak compare BASE CANDIDATE`: the verdicts (human, Markdown or JSON), the page, and
/// exit 1 on a regressed primary metric when asked. The verdicts are printed even when the
/// page cannot be written (a full disk); then the exit code is 3.
pub fn compare(args: &CompareArgs) -> ExitCode {
    let options = CompareOptions {
        noise_pct: args.noise_pct,
        primary: args.primary.clone(),
        force: args.force,
        output: args.output.clone(),
        overwrite: args.force,
    };
    let mut unwritten = None;
    let comparison = match reports::compare(&args.base, &args.candidate, &options) {
        Ok(c) => c,
        Err(CompareError::Page {
            path,
            source,
            comparison,
        }) => {
            unwritten = Some(format!(
                "{}: cannot write the comparison page: {source}",
                path.display()
            ));
            *comparison
        }
        Err(err @ CompareError::Incomparable { .. }) => {
            crate::errln!(
                "{} compare: {err}; use --force to compare anyway",
                crate::program::name()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(
            err @ CompareError::Output {
                overridable: true, ..
            },
        ) if !args.force => {
            crate::errln!(
                "{} compare: {err} (use --force to overwrite it)",
                crate::program::name()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(err @ CompareError::UnknownMetric { .. }) => {
            crate::errln!("{} compare: --primary: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
        Err(err) => {
            crate::errln!("{} compare: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let page = comparison.path.as_ref().map_or_else(
        || "not written (see below)".to_owned(),
        |p| p.display().to_string(),
    );
    match args.format {
        CompareFormat::Human => {
            crate::outln!("{}", compare_text::human(&comparison));
            crate::outln!("page: {page}");
        }
        CompareFormat::Md => {
            crate::outln!("{}", compare_text::markdown(&comparison));
            crate::errln!("{} compare: page {page}", crate::program::name());
        }
        CompareFormat::Json => match serde_json::to_string_pretty(&compare_text::json(&comparison))
        {
            Ok(json) => crate::outln!("{json}"),
            Err(err) => {
                crate::errln!(
                    "{} compare: cannot print JSON: {err}",
                    crate::program::name()
                );
                return ExitCode::from(EXIT_FAIL);
            }
        },
    }
    let regressed = args.fail_on_regression && comparison.regressed();
    if regressed {
        crate::errln!(
            "{} compare: a primary metric regressed beyond its noise ({})",
            crate::program::name(),
            comparison.headline()
        );
    }
    // An output that could not be written outranks the verdict (as for a run's record).
    if let Some(why) = unwritten {
        crate::errln!(
            "{} compare: {why}; exit code {EXIT_IO}",
            crate::program::name()
        );
        return ExitCode::from(EXIT_IO);
    }
    ExitCode::from(if regressed { EXIT_FAIL } else { EXIT_PASS })
}
