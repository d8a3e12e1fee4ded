//! Waiting for the user's keys: the one place the dashboard sleeps on the terminal.
//!
//! The wait is a `poll(2)` on standard input (the terminal crossterm reads when
//! stdin is one, which the dashboard requires) rather than crossterm's own: a
//! terminal that hangs up (its window closed, its tmux pane killed, the ssh link
//! dropped) stays readable forever with nothing to read, and crossterm's reader
//! retries that end of file without returning (crossterm-rs/crossterm#793). Here a
//! hang-up is seen as one and ends the dashboard; crossterm is asked for events only
//! when input is waiting in the terminal (and then without waiting), so it never
//! meets the dead terminal. A wait that a signal or its timeout ended is not input:
//! the `SIGHUP` of a hang-up interrupts it, and crossterm asked then spun forever.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Sleeps until the terminal has input or `timeout` passes (a signal may end it
/// sooner: callers loop); returns whether input is waiting, the only time
/// crossterm may be asked for it.
///
/// # Errors
///
/// [`io::ErrorKind::UnexpectedEof`] once the terminal has hung up or closed;
/// the `poll` error otherwise.
pub(crate) fn wait(timeout: Duration) -> io::Result<bool> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    wait_on(fd, timeout)
}

/// The terminal's size (columns, rows), read from its settings with one `ioctl` on
/// standard output: never its input, never a helper process. `None` if it has none.
pub(crate) fn size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(io::stdout().as_fd()).ok()?;
    Some((size.ws_col, size.ws_row))
}

/// [`wait`] on any descriptor (tests use a socket pair).
fn wait_on(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(millis)) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(false),
        Err(err) => return Err(err.into()),
    }
    let seen = fds[0].revents().unwrap_or(PollFlags::empty());
    // A terminal that hung up does not always say so with `POLLHUP`: it may only read
    // as readable with nothing in it (its end of file). In raw mode a live terminal is
    // readable only with input waiting, so readable and empty is the hang-up too.
    // Left to crossterm, that end of file made every wait return at once and the
    // dashboard spin on a processor for good.
    let readable = seen.contains(PollFlags::POLLIN);
    let at_end = readable && rustix::io::ioctl_fionread(fd).is_ok_and(|waiting| waiting == 0);
    if at_end || seen.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the terminal hung up",
        ));
    }
    Ok(readable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn input_ends_the_wait_and_a_hang_up_is_an_error() {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        // Nothing to read: the wait times out quietly, with no input to ask for.
        let timed_out = wait_on(reader.as_fd(), Duration::from_millis(10));
        assert!(!timed_out.expect("a timeout is no error"));
        let mut writer = writer;
        writer.write_all(b"q").expect("write");
        assert!(wait_on(reader.as_fd(), Duration::from_secs(30)).expect("input is ready"));
        // The other end closed: the wait says so instead of reporting input forever.
        drop(writer);
        let err = wait_on(reader.as_fd(), Duration::from_secs(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn readable_with_nothing_to_read_is_a_hang_up_too() {
        // The writing side shut, the reading side still open: readable, empty, and
        // no `POLLHUP`, as a hung-up terminal can be.
        let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let err = wait_on(reader.as_fd(), Duration::from_secs(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // Input still waiting is not an end, even once the writer is done.
        let (reader, mut writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        writer.write_all(b"q").expect("write");
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        assert!(wait_on(reader.as_fd(), Duration::from_secs(30)).expect("input is ready"));
    }

    #[test]
    fn a_wait_a_signal_ends_is_not_input() {
        use nix::sys::signal::Signal;
        // A handler of the signal (as a hang-up's SIGHUP or crossterm's SIGWINCH
        // has): it ends the poll with EINTR, which poll(2) never restarts.
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR2, seen.clone())
            .expect("a SIGUSR2 handler");
        let (reader, _writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let waiter = nix::sys::pthread::pthread_self();
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            nix::sys::pthread::pthread_kill(waiter, Signal::SIGUSR2).expect("pthread_kill");
        });
        let started = std::time::Instant::now();
        let woke = wait_on(reader.as_fd(), Duration::from_secs(30));
        signaller.join().expect("the signaller");
        assert!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            "the signal came"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the signal ended the wait"
        );
        assert!(
            !woke.expect("a signal is no error"),
            "a signal is not input"
        );
    }
}
