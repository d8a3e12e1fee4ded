//! What `soak crash-test` prints at the end: the verdict, the kills, the last run, the
//! counts (`lost N, duplicated M, left on disk K`) and where the evidence is, in the
//! summary's layout and vocabulary.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use runlog::human::{grouped, micros, seconds};

use super::{CrashOutcome, ledger};
use crate::summary::field;

/// The result of a crash test, for people; the verdict word coloured when `colour`.
pub fn render(o: &CrashOutcome, colour: bool) -> String {
    let t = &o.tally;
    let status = if o.passed() {
        runlog::Status::Pass
    } else {
        runlog::Status::Fail
    };
    let word = status.as_str().to_uppercase();
    let mode = match o.config.spill.as_ref() {
        Some(s) if s.write_ahead => "write-ahead",
        _ => "overflow only, no write-ahead",
    };
    let mut lines = vec![
        format!(
            "soak crash-test: {}",
            crate::style::verdict(status, &word, colour)
        ),
        field("kills", &kills(o, mode)),
        field("last run", &last_run(o)),
        field(
            "accepted",
            &format!(
                "{} events (each written down after the dispatcher took it)",
                grouped(t.accepted)
            ),
        ),
        field(
            "delivered",
            &format!(
                "{}, {} distinct ({} without an accepted record: taken just before a kill, \
                 before it was written down)",
                grouped(t.delivered),
                grouped(t.delivered_distinct),
                grouped(t.unrecorded)
            ),
        ),
        format!(
            "  lost {}, duplicated {}, left on disk {}",
            grouped(t.lost),
            grouped(t.duplicated),
            grouped(t.left_on_disk)
        ),
    ];
    if t.left_on_disk + t.on_disk_otherwise > 0 {
        lines.push(field("on disk", &on_disk(o)));
    }
    if !t.lost_ids.is_empty() {
        let ids: Vec<String> = t.lost_ids.iter().map(|&id| ledger::describe(id)).collect();
        lines.push(field("first lost", &ids.join("; ")));
    }
    if t.torn > 0 {
        lines.push(field(
            "torn",
            &format!(
                "{} id files ended in a record a kill cut short (left out)",
                grouped(t.torn)
            ),
        ));
    }
    let verdict = if o.passed() && t.left_on_disk > 0 {
        format!(
            "every accepted event was delivered at least once or is still on disk ({}, not \
             lost: the next run on the directory delivers them first)",
            grouped(t.left_on_disk)
        )
    } else if o.passed() {
        "every accepted event was delivered at least once".to_owned()
    } else {
        format!("{} accepted events were never delivered", grouped(t.lost))
    };
    lines.push(field("verdict", &verdict));
    lines.push(field("evidence", &o.work.display().to_string()));
    lines.join("\n")
}

/// What the last run left in the disk tier, and how to deliver it.
fn on_disk(o: &CrashOutcome) -> String {
    let t = &o.tally;
    let mut text = format!(
        "{} accepted events never delivered were still in the disk tier when the last run \
         ended",
        grouped(t.left_on_disk)
    );
    if t.on_disk_otherwise > 0 {
        text.push_str(&format!(
            ", beside {} delivered already or taken just before a kill",
            grouped(t.on_disk_otherwise)
        ));
    }
    if let Some(spill) = &o.config.spill {
        text.push_str(&format!(
            "; a run on it delivers them: soak --spill-dir {}",
            spill.dir.display()
        ));
    }
    text
}

/// `10 SIGKILLs, 4 ms to 580 ms into production (seed 1, write-ahead)`.
fn kills(o: &CrashOutcome, mode: &str) -> String {
    let seed = o.config.seed;
    let (Some(first), Some(last)) = (o.kill_delays.iter().min(), o.kill_delays.iter().max()) else {
        return format!("none (seed {seed}, {mode})");
    };
    format!(
        "{} SIGKILLs, {} to {} into production (seed {seed}, {mode})",
        grouped(o.kill_delays.len() as u64),
        micros(first.as_micros() as u64),
        micros(last.as_micros() as u64),
    )
}

/// `exit 0`, `ended by signal 9`.
pub(super) fn ended(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("ended by {}", crate::signals::signal_name(signal)),
        (None, None) => "ended".to_owned(),
    }
}

/// How the last run ended, and what its disk tier recovered and left.
fn last_run(o: &CrashOutcome) -> String {
    let ended = ended(&o.last_status);
    let took = seconds(o.last_took.as_secs_f64());
    let Some(r) = &o.last else {
        return format!("{ended} after {took}, no record");
    };
    let verdict = r.assessment.overall.as_str().to_uppercase();
    match &r.spill {
        Some(s) => format!(
            "{ended} ({verdict}) after {took}: {} recovered at start, {} replayed, {} left on disk at exit",
            grouped(s.recovered),
            grouped(s.replayed),
            grouped(s.left_on_disk)
        ),
        None => format!("{ended} ({verdict}) after {took}"),
    }
}
