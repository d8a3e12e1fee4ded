//! Taking over the terminal, and giving it back on every path (return, error, panic).
//!
//! Nothing is written to the terminal before [`check`] has passed: a dashboard started
//! with its output going to a file or a pipe, or on a terminal it cannot drive, fails
//! with a clear error and leaves its output untouched. Set-up then goes in stages (raw
//! mode, the alternate screen), and [`restore`] undoes only the stages that were done.

use std::io::{self, IsTerminal, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// The stages of set-up done so far (bits), so that [`restore`] undoes just those.
static DONE: AtomicU8 = AtomicU8::new(0);
const RAW: u8 = 1;
const ALTERNATE: u8 = 2;
static PANIC_HOOK: Once = Once::new();

/// Why the terminal cannot host the dashboard, or `Ok` when it can. Writes nothing.
///
/// Asks, in order: stdout and stdin are terminals (the dashboard draws on one and reads
/// keys from the other), `TERM` is not `dumb` (a terminal that cannot address the cursor;
/// unset is fine: the dashboard writes plain ANSI and reads no terminfo), and the
/// terminal's size can be read (a size of zero is drawn as "terminal too small").
pub(crate) fn check() -> io::Result<()> {
    check_given(
        io::stdout().is_terminal(),
        io::stdin().is_terminal(),
        std::env::var("TERM").ok().as_deref(),
    )?;
    ratatui::crossterm::terminal::size()
        .map(drop)
        .map_err(|e| unusable(&format!("the terminal's size cannot be read: {e}")))
}

/// [`check`]'s decisions that need no terminal.
fn check_given(stdout: bool, stdin: bool, term: Option<&str>) -> io::Result<()> {
    if !stdout {
        return Err(unusable("stdout is not a terminal"));
    }
    if !stdin {
        return Err(unusable(
            "stdin is not a terminal (the dashboard reads keys from it)",
        ));
    }
    match term.map(str::trim) {
        Some("dumb") => Err(unusable("TERM=dumb cannot draw the dashboard")),
        _ => Ok(()),
    }
}

fn unusable(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, why.to_owned())
}

/// Holds the terminal in raw mode on the alternate screen; dropping it restores both.
///
/// A panic hook (installed once per process, chaining the previous hook) restores the
/// terminal first, so the panic message prints on the normal screen.
pub(crate) struct TerminalGuard {
    /// `None` only while dropping.
    terminal: Option<Terminal<CrosstermBackend<Stdout>>>,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen; undoes what it did if a later step
    /// fails. Call it once [`check`] has passed.
    pub(crate) fn enter() -> io::Result<Self> {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        let setup = enable_raw_mode()
            .inspect(|()| {
                DONE.fetch_or(RAW, Ordering::SeqCst);
            })
            .and_then(|()| execute!(io::stdout(), EnterAlternateScreen))
            .inspect(|()| {
                DONE.fetch_or(ALTERNATE, Ordering::SeqCst);
            })
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match setup {
            Ok(terminal) => Ok(Self {
                terminal: Some(terminal),
            }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// The terminal to draw on.
    pub(crate) fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        self.terminal.as_mut().expect("held until dropped")
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        if let Some(mut terminal) = self.terminal.take() {
            // ratatui's own drop shows a hidden cursor and, if the terminal is gone,
            // reports the failure with `eprintln!`, which panics when stderr is that
            // same dead terminal. Shown here instead; a terminal that cannot show it
            // is not dropped at all (its few buffers go with the process).
            if terminal.show_cursor().is_err() {
                std::mem::forget(terminal);
            }
        }
    }
}

/// Gives the terminal back now if a dashboard holds it: leaves the alternate screen and
/// shows the cursor if it was entered, leaves raw mode if it was entered; nothing else.
/// Errors are ignored because there is nothing better to do with them while exiting or
/// panicking. Idempotent.
pub(crate) fn restore() {
    let done = DONE.swap(0, Ordering::SeqCst);
    if done & RAW != 0 {
        let _ = disable_raw_mode();
    }
    if done & ALTERNATE != 0 {
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_cannot_host_a_dashboard() {
        let why = |stdout, stdin, term| {
            check_given(stdout, stdin, term)
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(why(false, true, Some("xterm")), "stdout is not a terminal");
        assert!(why(true, false, Some("xterm")).starts_with("stdin is not a terminal"));
        assert!(why(true, true, Some("dumb")).contains("TERM=dumb"));
        assert!(check_given(true, true, Some("xterm-256color")).is_ok());
        assert!(
            check_given(true, true, None).is_ok(),
            "plain ANSI needs no TERM"
        );
    }

    #[test]
    fn restoring_what_was_never_set_up_writes_nothing() {
        // Nothing was entered: restore must not touch the terminal (it would write
        // escape codes to stdout). DONE stays 0 and no stage is undone.
        restore();
        assert_eq!(DONE.load(Ordering::SeqCst), 0);
    }
}
