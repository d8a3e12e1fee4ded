//! Freeing a large value on a thread of its own, so whoever keeps a deadline
//! does not spend it on millions of frees.

use std::thread;

/// Drops `value` on a new thread named `name`, or here if no thread can be
/// started. If the process ends first, the value goes with it.
///
/// # Examples
///
/// ```
/// let backlog: Vec<Vec<u8>> = (0..1_000).map(|_| vec![0; 64]).collect();
/// loadgen::drop_elsewhere("backlog", backlog);
/// ```
pub fn drop_elsewhere<T: Send + 'static>(name: &str, value: T) {
    // Should no thread start, the closure, and the value in it, is dropped here.
    let _ = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || drop(value));
}
