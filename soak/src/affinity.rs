//! `--cpus N`: pins a run's threads to N of the cores this process may use,
//! to rehearse a smaller machine (a Raspberry Pi 4 has 4) on a bigger one.
//!
//! It is an approximation: the same number of cores, not the same cores,
//! caches, memory bandwidth or clock.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Why the run could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    /// More cores asked for than this process may use.
    #[error("--cpus {asked} is out of range (allowed: 1..={available} on this machine)")]
    OutOfRange {
        /// Cores asked for.
        asked: u32,
        /// Cores this process may use.
        available: usize,
    },
    /// The operating system refused.
    #[error("--cpus: cannot set CPU affinity: {0}")]
    System(#[from] nix::Error),
}

/// The cores this process may run on now.
///
/// # Errors
///
/// [`AffinityError::System`] if the kernel will not say.
pub fn allowed_cores() -> Result<Vec<usize>, AffinityError> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Restricts the calling thread, and every thread it starts from now on, to
/// the first `cpus` of the cores it may use. Returns the cores chosen.
///
/// # Errors
///
/// [`AffinityError::OutOfRange`] for 0 or more cores than allowed;
/// [`AffinityError::System`] if the kernel refuses.
pub fn pin_current_thread(cpus: u32) -> Result<Vec<usize>, AffinityError> {
    let allowed = allowed_cores()?;
    if cpus == 0 || cpus as usize > allowed.len() {
        return Err(AffinityError::OutOfRange {
            asked: cpus,
            available: allowed.len(),
        });
    }
    let chosen: Vec<usize> = allowed.into_iter().take(cpus as usize).collect();
    let mut set = CpuSet::new();
    for &cpu in &chosen {
        set.set(cpu)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_a_thread_to_one_core_and_its_children_inherit_it() {
        let pinned = std::thread::spawn(|| {
            let chosen = pin_current_thread(1).expect("one core is always allowed");
            let child = std::thread::spawn(|| allowed_cores().expect("readable"))
                .join()
                .expect("child");
            (chosen, allowed_cores().expect("readable"), child)
        })
        .join()
        .expect("thread");
        let (chosen, now, child) = pinned;
        assert_eq!(chosen.len(), 1);
        assert_eq!(now, chosen);
        assert_eq!(
            child, chosen,
            "threads started after pinning inherit the mask"
        );
    }

    #[test]
    fn more_cores_than_allowed_is_a_clear_error() {
        let available = allowed_cores().expect("readable").len();
        let err = std::thread::spawn(move || pin_current_thread(available as u32 + 1).unwrap_err())
            .join()
            .expect("thread");
        assert!(err.to_string().contains("--cpus"), "{err}");
        assert!(
            err.to_string().contains(&format!("1..={available}")),
            "{err}"
        );
        assert!(matches!(
            std::thread::spawn(|| pin_current_thread(0))
                .join()
                .expect("thread"),
            Err(AffinityError::OutOfRange { .. })
        ));
    }
}
