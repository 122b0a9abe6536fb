//! Stopping on SIGINT / SIGTERM / SIGHUP without signal handlers: the signals are blocked
//! and read from a signalfd.

use crate::filesystem::Filesystem;
use crate::session::Session;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use std::os::fd::AsFd;

/// SIGINT, SIGTERM and SIGHUP, blocked and readable from a signalfd.
///
/// Create it *before* mounting: threads inherit the signal mask of the thread that starts
/// them, and a termination signal delivered to an unblocked worker would kill the process
/// without unmounting.
#[derive(Debug)]
pub struct TerminationSignals {
    fd: SignalFd,
}

impl TerminationSignals {
    /// Block the signals in this thread (and the threads it starts from now on).
    pub fn block() -> io::Result<TerminationSignals> {
        Self::block_with(&[])
    }

    /// Also block and report `extra` signals (SIGUSR1 to print statistics, say).
    pub fn block_with(extra: &[Signal]) -> io::Result<TerminationSignals> {
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].iter().chain(extra) {
            set.add(*s);
        }
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
        Ok(TerminationSignals { fd })
    }

    /// Wait until a signal arrives (returned) or the session's filesystem is unmounted from
    /// outside (`None`).
    pub fn wait<F: Filesystem>(&self, session: &Session<F>) -> io::Result<Option<Signal>> {
        loop {
            let mut fds = [
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                PollFd::new(session.finished_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if fds[1].any().unwrap_or(false) {
                return Ok(None);
            }
            if let Some(info) = self.fd.read_signal()? {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    return Ok(Some(sig));
                }
            }
        }
    }
}
