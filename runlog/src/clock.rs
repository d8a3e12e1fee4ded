//! Wall-clock names: run ids and RFC 3339 timestamps (UTC).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as RFC 3339 UTC with whole seconds, e.g. `2026-11-23T10:35:12Z`.
///
/// ```
/// let now = runlog::now_rfc3339();
/// assert_eq!(now.len(), 20);
/// assert!(now.ends_with('Z'));
/// ```
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A new run id: UTC date and time plus 4 random hex digits, e.g. `20261123-103512-a3f9`.
///
/// Ids sort by start time; the suffix keeps two runs started in the same second apart.
///
/// ```
/// let id = runlog::new_run_id();
/// assert_eq!(id.len(), 20);
/// assert_eq!(&id[8..9], "-");
/// assert_ne!(id, runlog::new_run_id());
/// ```
#[must_use]
pub fn new_run_id() -> String {
    let now = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}-{:04x}", &digits[..8], &digits[8..14], suffix(now))
}

/// 16 bits that differ between processes and between calls in one process.
fn suffix(now: SystemTime) -> u16 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per process: randomness without a rand crate.
    let mut hasher = RandomState::new().build_hasher();
    now.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    CALLS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    let h = hasher.finish();
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_has_the_documented_shape() {
        let id = new_run_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert!(parts[0].len() == 8 && parts[0].chars().all(|c| c.is_ascii_digit()));
        assert!(parts[1].len() == 6 && parts[1].chars().all(|c| c.is_ascii_digit()));
        assert!(parts[2].len() == 4 && parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn run_id_date_matches_rfc3339_date() {
        let (now, id) = (now_rfc3339(), new_run_id());
        // Same day unless the test straddles midnight UTC; the year is enough to check order.
        assert_eq!(&now[..4], &id[..4]);
    }
}
