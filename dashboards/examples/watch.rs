//! Watches a run read-only: `cargo run -p dashboards --example watch -- [RUN_DIR | samples.jsonl]`.
//!
//! Without an argument it follows `target/soak/latest/samples.jsonl`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/soak/latest"), PathBuf::from);
    let samples = if arg.is_dir() {
        arg.join("samples.jsonl")
    } else {
        arg
    };
    let mut options = dashboards::DashboardOptions::new(&samples);
    options.title = format!("watching {}", samples.display());
    let exit = dashboards::run(options)?;
    println!("dashboard: {exit:?}");
    Ok(())
}
