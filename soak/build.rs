//! Records the compiler and the source revision for the run record's environment.

use std::process::Command;

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output_of(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let rev =
        output_of("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output_of("git", &["status", "--porcelain", "--untracked-files=no"]).is_some();
    println!("cargo:rustc-env=METRONOME_RUSTC={version}");
    println!(
        "cargo:rustc-env=METRONOME_GIT_REV={rev}{}",
        if dirty { "-dirty" } else { "" }
    );
    let lg_page = std::env::var("JEMALLOC_SYS_WITH_LG_PAGE").unwrap_or_default();
    println!("cargo:rustc-env=METRONOME_JEMALLOC_LG_PAGE={lg_page}");
    println!("cargo:rerun-if-env-changed=JEMALLOC_SYS_WITH_LG_PAGE");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
}
