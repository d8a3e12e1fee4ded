//! A crash test's child run, as the run sees it: it tags every event with its run index
//! and writes down, in the [`ledger`], each id the dispatcher accepted
//! (after `Ok`) and each id the consumer received (before the batch is dropped, which
//! acknowledges it). A kill between accepting and writing down leaves an event delivered
//! without an accepted record; one between writing down and acknowledging, a duplicate:
//! never a loss the tally cannot see.
//!
//! The parent names the ledger and the run in the environment ([`LEDGER_ENV`],
//! [`RUN_ENV`]); a run started without them has no witness.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use loadgen::{BatchSource, Event, Offer, SourceError, Target};

use super::ledger;

/// The directory of the id files.
pub const LEDGER_ENV: &str = "METRONOME_CRASH_LEDGER";
/// The child run's index.
pub const RUN_ENV: &str = "METRONOME_CRASH_RUN";

/// Where a child run writes down what it accepted and delivered.
#[derive(Debug)]
pub struct Witness {
    dir: PathBuf,
    run: u32,
    /// Producer handles given a file so far.
    handles: AtomicU32,
}

impl Witness {
    /// A witness writing run `run`'s ids into `dir` (which must exist).
    pub fn new(dir: PathBuf, run: u32) -> Self {
        Witness {
            dir,
            run,
            handles: AtomicU32::new(0),
        }
    }

    /// The witness the environment names, if it names one.
    ///
    /// # Errors
    ///
    /// A run index that is not a number within [`ledger::MAX_RUNS`], or a ledger that is
    /// not a directory.
    pub fn from_env() -> Option<Result<Arc<Witness>, String>> {
        let dir = PathBuf::from(std::env::var_os(LEDGER_ENV)?);
        let run = std::env::var(RUN_ENV).unwrap_or_default();
        Some(match run.parse::<u32>() {
            Ok(run) if run < ledger::MAX_RUNS && dir.is_dir() => {
                Ok(Arc::new(Witness::new(dir, run)))
            }
            _ => Err(format!(
                "{LEDGER_ENV}={} {RUN_ENV}={run}: not a crash test's ledger directory and run index",
                dir.display()
            )),
        })
    }

    /// `target`, tagging events and writing down the accepted ones.
    ///
    /// # Errors
    ///
    /// The id file cannot be created.
    pub fn target(self: &Arc<Self>, target: Arc<dyn Target>) -> std::io::Result<Arc<dyn Target>> {
        Ok(Arc::new(Tagging::new(Arc::clone(self), target)?))
    }

    /// `source`, writing down the ids of every batch it hands out.
    ///
    /// # Errors
    ///
    /// The id file cannot be created.
    pub fn source<S: BatchSource>(&self, source: S) -> std::io::Result<Witnessed<S>> {
        Ok(Witnessed {
            inner: source,
            file: ledger::delivered_file(&self.dir, self.run)?,
            path: ledger::delivered_path(&self.dir, self.run),
            buf: Vec::new(),
        })
    }

    fn accepted_file(&self) -> std::io::Result<(File, PathBuf)> {
        let handle = self.handles.fetch_add(1, Ordering::Relaxed);
        let file = ledger::accepted_file(&self.dir, self.run, handle)?;
        Ok((file, ledger::accepted_path(&self.dir, self.run, handle)))
    }
}

/// Evidence that cannot be written: the test would count on ids it does not have, so the
/// run ends at once, with exit code 3 (an output could not be written) and a line saying
/// which, which the crash test reports as the cause. What it had not written down is safe:
/// an accepted event not written down is on disk (write-ahead), a batch received and not
/// written down was not acknowledged.
fn unwritable(what: &str, path: &Path, err: &std::io::Error) -> ! {
    crate::errln!(
        "{}: crash test: cannot write the {what} ids to {}: {err}",
        crate::program::name(),
        path.display()
    );
    std::process::exit(i32::from(crate::app::EXIT_IO))
}

/// A producer handle's target: tags, offers, writes down what was accepted.
struct Tagging {
    witness: Arc<Witness>,
    inner: Arc<dyn Target>,
    file: File,
    path: PathBuf,
}

impl Tagging {
    fn new(witness: Arc<Witness>, inner: Arc<dyn Target>) -> std::io::Result<Self> {
        let (file, path) = witness.accepted_file()?;
        Ok(Tagging {
            witness,
            inner,
            file,
            path,
        })
    }
}

impl Target for Tagging {
    fn offer(&self, event: Event) -> Offer {
        let event = ledger::tag(event, self.witness.run);
        let id = ledger::id(&event);
        let offer = self.inner.offer(event);
        if let Offer::Accepted = offer {
            let mut file = &self.file;
            if let Err(err) = std::io::Write::write_all(&mut file, &id.to_le_bytes()) {
                unwritable("accepted", &self.path, &err);
            }
        }
        offer
    }

    fn fork(&self) -> Option<Arc<dyn Target>> {
        let inner = self.inner.fork().unwrap_or_else(|| Arc::clone(&self.inner));
        match Tagging::new(Arc::clone(&self.witness), inner) {
            Ok(tagging) => Some(Arc::new(tagging)),
            Err(err) => unwritable("accepted", &self.witness.dir, &err),
        }
    }
}

/// A batch source that writes down the ids of every batch before handing it out.
pub struct Witnessed<S> {
    inner: S,
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<S: BatchSource> BatchSource for Witnessed<S> {
    type Batch<'a>
        = S::Batch<'a>
    where
        Self: 'a;

    fn recv_batch(&mut self, timeout: Duration) -> Result<Self::Batch<'_>, SourceError> {
        let batch = self.inner.recv_batch(timeout)?;
        if let Err(err) = ledger::append(&self.file, &mut self.buf, batch.iter().map(ledger::id)) {
            unwritable("delivered", &self.path, &err);
        }
        Ok(batch)
    }

    fn try_recv_batch(&mut self) -> Result<Self::Batch<'_>, SourceError> {
        let batch = self.inner.try_recv_batch()?;
        if let Err(err) = ledger::append(&self.file, &mut self.buf, batch.iter().map(ledger::id)) {
            unwritable("delivered", &self.path, &err);
        }
        Ok(batch)
    }

    /// What is abandoned was not delivered: it is not written down.
    fn abandon(&mut self) -> u64 {
        self.inner.abandon()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Accepts events of even sequence numbers, keeping them.
    #[derive(Default)]
    struct EvenOnly(Mutex<Vec<Event>>);

    impl Target for EvenOnly {
        fn offer(&self, event: Event) -> Offer {
            if event.seq() % 2 == 0 {
                self.0.lock().expect("lock").push(event);
                Offer::Accepted
            } else {
                Offer::Refused(event)
            }
        }
    }

    #[test]
    fn only_accepted_ids_are_written_down_tagged_with_the_run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let witness = Arc::new(Witness::new(tmp.path().to_path_buf(), 7));
        let inner = Arc::new(EvenOnly::default());
        let target = witness.target(inner.clone()).expect("target");
        let forked = target.fork().expect("a handle of its own");
        for seq in 0..4 {
            let _ = forked.offer(Event::new(vec![1, 2], 0, 1, seq));
        }
        let kept = inner.0.lock().expect("lock");
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|e| e.producer() == (7 << 12) | 1));
        let t = ledger::tally(tmp.path()).expect("tally");
        assert_eq!((t.accepted, t.lost), (2, 2));
        assert_eq!(ledger::progress(tmp.path(), 7).expect("progress"), (2, 0));
    }
}
