//! Pseudo-terminal pairs in raw mode: the simulated vision machine writes to the master side,
//! and the link opens the slave path through tokio-serial like any device.

use nix::fcntl::OFlag;
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A pty master with its slave's path. Dropping it closes the master, which ends the slave
/// side's reads (EOF / EIO) — what a pulled USB adapter looks like.
pub struct Pty {
    /// The master side; written by the simulator or a test.
    master: std::fs::File,
    /// Path of the slave device, e.g. `/dev/pts/7`.
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a pair and puts it in raw mode, so `\r` stays `\r` and nothing is echoed even
    /// before the link opens the slave.
    pub fn open_raw() -> io::Result<Pty> {
        let master: PtyMaster = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let slave_path = PathBuf::from(ptsname_r(&master)?);
        // Termios live on the slave: open it once to set raw mode, then close it, so the
        // link's open (which sets TIOCEXCL) is the only one and can be repeated after restarts.
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_path)?;
        let mut termios = tcgetattr(slave.as_fd())?;
        cfmakeraw(&mut termios);
        tcsetattr(slave.as_fd(), SetArg::TCSANOW, &termios)?;
        drop(slave);
        let master = std::fs::File::from(std::os::fd::OwnedFd::from(master));
        Ok(Pty { master, slave_path })
    }

    /// The slave device path to open as a serial port.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Writes all bytes to the master (blocks while the pty buffer is full).
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.master.write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn raw_pty_passes_carriage_returns_unchanged() {
        let mut pty = Pty::open_raw().unwrap();
        let mut slave = OpenOptions::new()
            .read(true)
            .open(pty.slave_path())
            .unwrap();
        pty.write_all(b"a,1\r").unwrap();
        let mut buf = [0u8; 4];
        slave.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"a,1\r");
    }
}
