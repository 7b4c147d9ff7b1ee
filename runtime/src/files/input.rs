//! Reading an input file whole, safely whatever the path names: a regular file is read as it is;
//! a device or a pipe is read up to [`MAX_STREAM`] bytes (`/dev/zero` and `/dev/urandom` never
//! end); a FIFO with no writer reads as empty instead of waiting forever; a directory is refused.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// The most bytes read from a file that is not a regular file.
pub const MAX_STREAM: u64 = 256 << 20;

/// The bytes of the file at `path` (see the module documentation). Errors say what the file is.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let meta = fs::metadata(path)?;
    if meta.is_file() {
        return fs::read(path);
    }
    if meta.is_dir() {
        return Err(io::Error::other("it is a directory, not a file"));
    }
    let kind = kind(&meta);
    let file = open_stream(path, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_STREAM + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STREAM {
        return Err(io::Error::other(format!(
            "it is a {kind} that gives more than {} MiB, the most read from a device or a pipe; copy the data to a regular file",
            MAX_STREAM >> 20
        )));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    // The message std's `read_to_string` gives.
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

fn kind(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_fifo() {
            return "pipe";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    let _ = meta;
    "special file"
}

/// Opens a device or a pipe for reading. A FIFO is opened without waiting for a writer (a FIFO
/// that nobody writes then reads as empty), and then read normally, waiting for data.
fn open_stream(path: &Path, meta: &fs::Metadata) -> io::Result<fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        use std::os::unix::io::AsRawFd;
        if meta.file_type().is_fifo() {
            let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
            // SAFETY: fcntl on a descriptor this function owns, with integer arguments only.
            unsafe {
                let fd = file.as_raw_fd();
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            return Ok(file);
        }
    }
    let _ = meta;
    fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn endless_devices_are_cut_off() {
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device that gives more than 256 MiB"), "{e}");
        assert!(read(Path::new("/dev/null")).unwrap().is_empty());
        assert!(read(Path::new("/")).unwrap_err().to_string().contains("directory"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_without_a_writer_reads_as_empty() {
        let dir = std::env::temp_dir().join(format!("circ-input-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("f");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read(&fifo).unwrap().is_empty());
    }
}
