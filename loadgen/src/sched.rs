//! The scheduling class a producer thread asks the operating system for.

use std::io;

/// How the operating system schedules a producer thread.
///
/// # Examples
///
/// ```
/// use loadgen::Scheduling;
///
/// // What a thread gets unless asked otherwise.
/// assert_eq!(Scheduling::default(), Scheduling::Normal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduling {
    /// The class the thread starts in (inherited from the thread that spawned it).
    #[default]
    Normal,
    /// Linux's `SCHED_BATCH`: the thread gets its fair share of the processors, but
    /// its wake-ups do not preempt a running normal thread; only the scheduler's tick
    /// takes a processor on its behalf. Only a thread in the normal class moves to it:
    /// one started in another (idle, real-time, batch already, e.g. under `chrt`) keeps
    /// its class, which was chosen on purpose. Moving an idle thread to batch would
    /// raise it above the threads left idle.
    Batch,
}

impl Scheduling {
    /// The name a scenario file and the soak's `--producer-scheduling` use.
    ///
    /// ```
    /// assert_eq!(loadgen::Scheduling::Batch.name(), "batch");
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Scheduling::Normal => "normal",
            Scheduling::Batch => "batch",
        }
    }
}

/// The operating system would not put a thread in the class asked for; the thread
/// keeps the class it had.
#[derive(Debug, thiserror::Error)]
#[error("cannot put a producer thread in the {} scheduling class: {source}", .asked.name())]
pub struct SchedulingError {
    /// The class asked for.
    pub asked: Scheduling,
    /// Why not ([`io::ErrorKind::Unsupported`] off Linux).
    #[source]
    pub source: io::Error,
}

/// Puts the calling thread in `scheduling`'s class ([`Scheduling::Normal`] changes
/// nothing, and [`Scheduling::Batch`] changes only a thread in the normal class).
///
/// # Errors
///
/// [`SchedulingError`] if the operating system refuses, or has no such class (only
/// Linux has `SCHED_BATCH`).
///
/// # Examples
///
/// ```
/// use loadgen::{Scheduling, set_scheduling};
///
/// std::thread::spawn(|| {
///     let batch = set_scheduling(Scheduling::Batch);
///     assert_eq!(batch.is_ok(), cfg!(target_os = "linux"));
/// })
/// .join()
/// .unwrap();
/// ```
pub fn set_scheduling(scheduling: Scheduling) -> Result<(), SchedulingError> {
    match scheduling {
        Scheduling::Normal => Ok(()),
        Scheduling::Batch => batch().map_err(|source| SchedulingError {
            asked: scheduling,
            source,
        }),
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn batch() -> io::Result<()> {
    // SAFETY: `sched_getscheduler` takes no pointer and reads nothing of this program;
    // pid 0 is the calling thread.
    let class = unsafe { libc::sched_getscheduler(0) };
    if class == -1 {
        return Err(io::Error::last_os_error());
    }
    // The reset-on-fork flag may come with the class; it is not one.
    if class & !libc::SCHED_RESET_ON_FORK != libc::SCHED_OTHER {
        return Ok(());
    }
    set_class(libc::SCHED_BATCH)
}

/// Puts the calling thread in `class`, one without priorities (normal, batch, idle).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_class(class: libc::c_int) -> io::Result<()> {
    // Those classes take priority 0, the only one they have.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` only reads the `sched_param` it is given, which is
    // initialized and outlives the call, and keeps no pointer to it. Pid 0 is the
    // calling thread (Linux schedules threads, not processes); changing its class
    // touches no memory of this program.
    let rc = unsafe { libc::sched_setscheduler(0, class, &raw const param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn batch() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SCHED_BATCH is Linux-only",
    ))
}

/// The calling thread's scheduling policy as the kernel reports it (field 41 of
/// `/proc/thread-self/stat`: 0 normal, 3 batch).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn policy_of(stat: &str) -> u32 {
    // The command name, in parentheses, may hold spaces: count fields after it.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    after
        .split_whitespace()
        .nth(41 - 3)
        .and_then(|f| f.parse().ok())
        .expect("a policy field")
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_policy() -> u32 {
        policy_of(&std::fs::read_to_string("/proc/thread-self/stat").expect("procfs"))
    }

    #[test]
    fn batch_is_what_the_kernel_then_reports_for_this_thread_only() {
        let inherited = own_policy();
        let (before, after) = std::thread::spawn(|| {
            let before = own_policy();
            set_scheduling(Scheduling::Batch).expect("unprivileged threads may choose batch");
            (before, own_policy())
        })
        .join()
        .expect("thread");
        assert_eq!((before, after), (inherited, 3));
        // The class is the thread's own: this one is untouched.
        assert_eq!(own_policy(), inherited);
    }

    #[test]
    fn batch_leaves_an_idle_thread_idle() {
        let policy = std::thread::spawn(|| {
            // Any thread may enter SCHED_IDLE.
            set_class(libc::SCHED_IDLE).expect("idle class");
            set_scheduling(Scheduling::Batch).expect("nothing to refuse");
            own_policy()
        })
        .join()
        .expect("thread");
        assert_eq!(policy, 5);
    }

    #[test]
    fn normal_keeps_the_inherited_class() {
        let inherited = own_policy();
        let policy = std::thread::spawn(|| {
            set_scheduling(Scheduling::Normal).expect("nothing to refuse");
            own_policy()
        })
        .join()
        .expect("thread");
        assert_eq!(policy, inherited);
    }
}
