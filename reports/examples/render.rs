//! Renders `report.html` in a run directory, or compares two runs.
//!
//! ```text
//! cargo run -p reports --example render -- RUN_DIR
//! cargo run -p reports --example render -- BASE_DIR CANDIDATE_DIR [--force]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let force = args.iter().any(|a| a == "--force");
    let dirs: Vec<PathBuf> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let outcome = match dirs.as_slice() {
        [run] => reports::render_run(run)
            .map(|r| {
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{} ({} bytes)", r.path.display(), r.bytes);
            })
            .map_err(|e| e.to_string()),
        [base, candidate] => {
            let opts = reports::CompareOptions {
                force,
                ..Default::default()
            };
            reports::compare(base, candidate, &opts)
                .map(|c| {
                    for m in &c.metrics {
                        println!("{:<20} {:>12}", m.label, m.verdict);
                    }
                    println!(
                        "{}: {}",
                        c.path
                            .as_ref()
                            .map_or_else(String::new, |p| p.display().to_string()),
                        c.headline()
                    );
                })
                .map_err(|e| e.to_string())
        }
        _ => Err("usage: render RUN_DIR | render BASE_DIR CANDIDATE_DIR [--force]".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
