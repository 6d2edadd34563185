//! A raw pseudo-terminal pair standing in for a serial line: bytes written to the master
//! ([`Pty::write_all`]) are read by whoever opens [`Pty::slave_path`] (the link, through
//! tokio-serial). Used by the simulated machine and by tests.

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{OpenptyResult, openpty};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`Pty::write_all`] waits without the reader taking a single byte before giving up.
const WRITE_STALL_LIMIT: Duration = Duration::from_secs(10);

/// The master side of a pseudo-terminal in raw mode. Dropping it closes the master, which the
/// reader of the slave sees as EOF (or EIO) — an unplugged device.
#[derive(Debug)]
pub struct Pty {
    /// The master end, non-blocking so a writer can notice a reader that does not read.
    master: File,
    /// The slave device (`/dev/pts/N`) a reader opens.
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a pseudo-terminal pair in raw mode: no `\r` -> `\n` translation, no echo, no
    /// flow-control characters — bytes pass exactly.
    ///
    /// Raw mode is set here, before anyone opens the slave, because the line discipline
    /// processes bytes when they are written to the master: in the default cooked mode a `\r`
    /// written before the reader opened the port would already have become `\n`.
    ///
    /// No slave fd is kept open: the termios settings belong to the pair and outlive the
    /// slave's close while the master is open, and a writer with no reader either buffers (as
    /// Linux does) or gets EIO, which [`Pty::try_write`] callers handle. Holding one would not
    /// help a reopen either: serialport sets TIOCEXCL at open (which a pty slave keeps after
    /// its opener closes while the master lives) and clears it itself when it closes the port;
    /// the link reopening this path as a non-root user is covered by that, not by us.
    pub fn open_raw() -> io::Result<Pty> {
        let OpenptyResult { master, slave } = openpty(None, None)?;
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        let slave_path = nix::unistd::ttyname(&slave)?;
        // Not inherited by children: a leaked master would keep the "device" plugged in.
        fcntl(&master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        drop(slave);
        Ok(Pty {
            master: File::from(master),
            slave_path,
        })
    }

    /// The slave device path to open as the serial port.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Writes all of `bytes` to the master, waiting while the reader's buffer is full.
    /// Fails on EIO (on some kernels: no reader has the slave open) or when the reader takes
    /// nothing for 10 s. Blocks the calling thread: from async code, call it on a blocking
    /// thread (`spawn_blocking`) when the bytes may exceed the pty's buffer (about 4 KiB).
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let mut last_progress = Instant::now();
        while !bytes.is_empty() {
            match self.try_write(bytes) {
                Ok(n) => {
                    bytes = &bytes[n..];
                    last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if last_progress.elapsed() > WRITE_STALL_LIMIT {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "pty reader took no byte for 10 s",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether a reader has the slave open now (the master polls as hung up while none has).
    pub fn reader_attached(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => !fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => true,
        }
    }

    /// Writes what fits now; `WouldBlock` when the reader's buffer is full.
    pub fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match self.master.write(bytes) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// The identity of the port at `path` when it keeps what the device sends while nobody holds
/// it — a pseudo-terminal slave (the simulator, socat or ser2net bridges) — as text naming
/// the device it resolves to and its device number; `None` for anything else (a real UART,
/// whose kernel driver drops what arrives while the port is closed) or a path that is gone.
/// A stop at a record boundary hands the port over only to an open of the same identity.
pub fn handover_identity(path: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    /// Unix98 pty slaves (`/dev/pts/N`) have majors 136 to 143 (Documentation/admin-guide/devices.txt).
    const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;
    let device = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&device).ok()?;
    if !meta.file_type().is_char_device() {
        return None;
    }
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    PTY_SLAVE_MAJORS
        .contains(&major)
        .then(|| format!("{} (device {rdev:#x})", device.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_pass_raw_from_master_to_slave() {
        let mut pty = Pty::open_raw().unwrap();
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty.slave_path())
            .unwrap();
        pty.write_all(b"a\rb\n\xff\x11\x13\x03").unwrap();
        let mut got = [0u8; 8];
        slave.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"a\rb\n\xff\x11\x13\x03");
    }

    #[test]
    fn a_reader_is_attached_while_the_slave_is_open() {
        let pty = Pty::open_raw().unwrap();
        assert!(!pty.reader_attached());
        let slave = File::open(pty.slave_path()).unwrap();
        assert!(pty.reader_attached());
        drop(slave);
        assert!(!pty.reader_attached());
    }

    #[test]
    fn dropping_the_pty_ends_the_slave_reader() {
        let pty = Pty::open_raw().unwrap();
        let mut slave = File::open(pty.slave_path()).unwrap();
        drop(pty);
        let mut buf = [0u8; 4];
        // EOF or EIO, depending on the kernel; never a hang.
        match slave.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::EIO), "{e}"),
        }
    }
}
