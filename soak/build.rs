//! Records the compiler and the source revision for the run record's environment.

use std::path::Path;
use std::process::Command;

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    // No optional locks: `git status` must not rewrite the index it is watched by.
    let out = Command::new(program)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The files whose change moves the revision: HEAD, the branch it names, the index.
/// Asked of git, because in a worktree `.git` is a file and they live elsewhere; a
/// watched path that does not exist would rerun this script (and rebuild the crate)
/// on every build.
fn git_paths() -> Vec<String> {
    let mut names = vec!["HEAD".to_owned(), "index".to_owned()];
    names.extend(output_of("git", &["symbolic-ref", "-q", "HEAD"]));
    names
        .iter()
        .filter_map(|n| {
            output_of(
                "git",
                &["rev-parse", "--path-format=absolute", "--git-path", n],
            )
        })
        .filter(|p| Path::new(p).exists())
        .collect()
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
    for path in git_paths() {
        println!("cargo:rerun-if-changed={path}");
    }
}
