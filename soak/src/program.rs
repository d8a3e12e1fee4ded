//! The name messages call the program by: what the user ran.
//!
//! The rule: the program is `cargo soak` when the process was started by cargo (the `CARGO`
//! environment variable is set, as `cargo run`, and so the `cargo soak` alias, sets it) *and*
//! the binary runs from a cargo target directory (`argv[0]` is a path with a `target`
//! component, or a path under `$CARGO_TARGET_DIR`). Anything else is `soak`: a binary copied
//! or installed elsewhere (a Raspberry Pi, `~/.cargo/bin`), or a `target/` binary run from a
//! plain shell. Both conditions are needed: `CARGO` alone leaks into every process a cargo
//! build script or test starts, and a `target/` path alone is also where people run the
//! binary by hand. A binary started by a test under `cargo test` counts as run through
//! cargo (it is both); tests that want the plain name remove `CARGO` from its environment.
//!
//! [`name`] is the one place messages, hints, usage lines and examples take the name from.

use std::ffi::OsStr;
use std::path::{Component, Path};
use std::sync::OnceLock;

/// The name of the binary run directly.
pub const DIRECT: &str = "soak";
/// The name when run through cargo (the workspace's `cargo soak` alias).
pub const THROUGH_CARGO: &str = "cargo soak";

/// The program's name as the user ran it (see the module docs for the rule), computed once.
pub fn name() -> &'static str {
    static NAME: OnceLock<&'static str> = OnceLock::new();
    NAME.get_or_init(|| {
        let argv0 = std::env::args_os().next();
        name_for(
            std::env::var_os("CARGO").as_deref(),
            argv0.as_deref(),
            std::env::var_os("CARGO_TARGET_DIR").as_deref(),
        )
    })
}

/// The rule itself: `cargo` is the `CARGO` variable, `argv0` the path the binary was started
/// by, `target_dir` the `CARGO_TARGET_DIR` variable.
pub fn name_for(
    cargo: Option<&OsStr>,
    argv0: Option<&OsStr>,
    target_dir: Option<&OsStr>,
) -> &'static str {
    let by_cargo = cargo.is_some_and(|c| !c.is_empty());
    let in_target = argv0.map(Path::new).is_some_and(|path| {
        path.components()
            .any(|c| c == Component::Normal(OsStr::new("target")))
            || target_dir
                .filter(|dir| !dir.is_empty())
                .is_some_and(|dir| path.starts_with(dir))
    });
    if by_cargo && in_target {
        THROUGH_CARGO
    } else {
        DIRECT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(cargo: Option<&str>, argv0: &str, target_dir: Option<&str>) -> &'static str {
        name_for(
            cargo.map(OsStr::new),
            Some(OsStr::new(argv0)),
            target_dir.map(OsStr::new),
        )
    }

    #[test]
    fn cargo_soak_needs_cargo_and_a_target_directory() {
        let cargo = Some("/root/.cargo/bin/cargo");
        assert_eq!(
            rule(cargo, "/work/m/target/release/soak", None),
            "cargo soak"
        );
        assert_eq!(rule(cargo, "target/debug/soak", None), "cargo soak");
        assert_eq!(
            rule(cargo, "/b/out/release/soak", Some("/b/out")),
            "cargo soak"
        );
    }

    #[test]
    fn anything_else_is_soak() {
        let cargo = Some("/root/.cargo/bin/cargo");
        // Run by hand from the target directory, copied to a Pi, installed, on PATH.
        assert_eq!(rule(None, "/work/m/target/release/soak", None), "soak");
        assert_eq!(rule(None, "./soak", None), "soak");
        assert_eq!(rule(cargo, "/root/.cargo/bin/soak", None), "soak");
        assert_eq!(rule(cargo, "soak", None), "soak");
        assert_eq!(rule(Some(""), "target/debug/soak", None), "soak");
        assert_eq!(rule(cargo, "/b/elsewhere/soak", Some("/b/out")), "soak");
        assert_eq!(rule(cargo, "/home/targets/soak", None), "soak");
        assert_eq!(name_for(cargo.map(OsStr::new), None, None), "soak");
    }
}
