//! The one place the soak colours text for a terminal: the verdict words of the plain
//! end-of-run summary, green (PASS), yellow (WARN), red (FAIL). Whether to colour at all
//! is the caller's question to [`runlog::human::colour`] (a terminal, no `NO_COLOR`);
//! without colour the word is returned as it is, so a pipe or a file never sees an escape.

use anstyle::{AnsiColor, Style};
use runlog::Status;

/// The style of a verdict.
fn of(status: Status) -> Style {
    let colour = match status {
        Status::Pass => AnsiColor::Green,
        Status::Warn => AnsiColor::Yellow,
        Status::Fail => AnsiColor::Red,
    };
    Style::new().fg_color(Some(colour.into())).bold()
}

/// `word` (a verdict, e.g. `PASS`) in the colour of `status` when `colour`, else as it is.
#[must_use]
pub fn verdict(status: Status, word: &str, colour: bool) -> String {
    if colour {
        let style = of(status);
        format!("{style}{word}{style:#}")
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_coloured_only_when_asked() {
        assert_eq!(verdict(Status::Pass, "PASS", false), "PASS");
        assert_eq!(
            verdict(Status::Pass, "PASS", true),
            "\u{1b}[1m\u{1b}[32mPASS\u{1b}[0m"
        );
        assert!(verdict(Status::Warn, "WARN", true).contains("\u{1b}[33m"));
        assert!(verdict(Status::Fail, "FAIL", true).contains("\u{1b}[31m"));
    }
}
