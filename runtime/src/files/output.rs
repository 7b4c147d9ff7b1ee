//! Writing output files without ever losing one: the one helper every output of circ goes through
//! (checkpoints, gradients, predictions, plots, metrics), and the checks made before writing.
//!
//! - [`write_with`] replaces a regular file atomically: the bytes go to a uniquely named temporary
//!   file `.<name>.<random>.circ-tmp` in the target's directory, which is flushed to disk
//!   (`fsync`), given the target's permissions and renamed over the target; the directory is then
//!   flushed too. A crash leaves the old file or the new one, never half of one; on every error
//!   the temporary file is removed and the target is left as it was.
//! - A target that exists and is not a regular file (`/dev/null`, `/dev/full`, a FIFO) is written
//!   directly, never replaced, and its write errors are reported. A symbolic link is written
//!   through: the file it points to is replaced and the link is kept. `-` is standard output.
//! - Temporary files of this naming pattern left by a killed process are removed at the next
//!   write to the same target. A writer holds an advisory lock on its temporary file while it
//!   writes, and only unlocked temporaries older than 10 s count as stale, so a live
//!   writer's temporary is never taken for a stale one (concurrent writers to one target each
//!   write a whole file; the last rename wins).
//! - [`check_distinct`] refuses an output that is the same file as an input or as another output
//!   (same device and inode after following links, or the same path for files not yet made).
//! - [`Lock`] is an advisory lock that keeps two processes from writing one checkpoint.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The suffix of every temporary file this module creates.
const TEMP_SUFFIX: &str = ".circ-tmp";
/// Random characters in a temporary file's name.
const TEMP_RANDOM: usize = 8;
/// A temporary file is taken for stale (its writer killed) only when nobody holds its lock and it
/// was last written this long ago: a writer creates its temporary and then locks it, and the
/// moment between must not look stale.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
/// Most symbolic links followed to find a target (as Linux's `ELOOP` limit).
const MAX_LINKS: usize = 40;

/// A failed output: what was being done, to which file, and the system's reason.
#[derive(Debug)]
pub struct OutputError {
    pub action: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_stdout(&self.path) {
            write!(f, "cannot {} standard output: {}", self.action, self.source)
        } else {
            write!(f, "cannot {} {}: {}", self.action, self.path.display(), self.source)
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `-`: the name of standard output where an output is a stream.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Follows symbolic links from `path` (also dangling ones) to the path that is finally written.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other(format!("more than {MAX_LINKS} symbolic links")))
}

/// Writes an output: `-` is standard output; an existing non-regular file is written directly;
/// anything else is replaced atomically (see the module documentation). `write` produces the
/// bytes; whatever it or the file system reports is returned as an [`OutputError`].
pub fn write_with<F>(path: &Path, write: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let err = |action, source| OutputError { action, path: path.to_path_buf(), source };
    if is_stdout(path) {
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        return write(&mut lock).and_then(|()| lock.flush()).map_err(|e| err("write to", e));
    }
    let target = resolve(path).map_err(|e| err("resolve", e))?;
    match fs::metadata(&target) {
        Ok(m) if m.is_dir() => Err(err("write", io::Error::other("it is a directory"))),
        Ok(m) if !m.is_file() => {
            // A device or a FIFO: write into it, never replace it.
            let file = fs::OpenOptions::new().write(true).open(&target).map_err(|e| err("open", e))?;
            let mut out = BufWriter::with_capacity(1 << 16, file);
            write(&mut out).map_err(|e| err("write", e))?;
            out.into_inner().map_err(|e| err("write", e.into_error()))?;
            Ok(())
        }
        Ok(m) => replace(path, &target, Some(m.permissions()), write),
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace(path, &target, None, write),
        Err(e) => Err(err("inspect", e)),
    }
}

/// Checks, before any work, that [`write_with`] could write `path`: its directory exists and a
/// file can be created there (one is created and removed). Standard output, devices and FIFOs
/// pass: they are written into, not replaced.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let err = |action, p: &Path, source| OutputError { action, path: p.to_path_buf(), source };
    if is_stdout(path) {
        return Ok(());
    }
    let target = resolve(path).map_err(|e| err("resolve", path, e))?;
    match fs::metadata(&target) {
        Ok(m) if m.is_dir() => return Err(err("write", path, io::Error::other("it is a directory"))),
        Ok(m) if !m.is_file() => return Ok(()),
        _ => {}
    }
    let (dir, name) = split(&target).map_err(|e| err("write", path, e))?;
    let prefix = temp_prefix(&name);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX).rand_bytes(TEMP_RANDOM);
    fs::metadata(&dir).map_err(|e| err("create a file in", &dir, e))?;
    // Dropped at once: the probe is removed. tempfile's error names the probe, not the output:
    // its kind alone reads better beside the directory.
    builder.tempfile_in(&dir).map(drop).map_err(|e| err("create a file in", &dir, io::Error::from(e.kind())))
}

/// The directory and file name of `target`.
fn split(target: &Path) -> io::Result<(PathBuf, OsString)> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// The prefix of the temporary files made for a target named `name`.
fn temp_prefix(name: &std::ffi::OsStr) -> OsString {
    let mut p = OsString::from(".");
    p.push(name);
    p.push(".");
    p
}

fn replace<F>(path: &Path, target: &Path, perms: Option<fs::Permissions>, write: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let err = |action, p: &Path, source| OutputError { action, path: p.to_path_buf(), source };
    let (dir, name) = split(target).map_err(|e| err("write", path, e))?;
    remove_stale(&dir, &name);
    let prefix = temp_prefix(&name);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX).rand_bytes(TEMP_RANDOM);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The usual mode of a new file (the umask applies), or the mode of the file replaced.
        builder.permissions(perms.clone().unwrap_or_else(|| fs::Permissions::from_mode(0o666)));
    }
    let mut temp = builder.tempfile_in(&dir).map_err(|e| err("create a temporary file in", &dir, e))?;
    // Marks the temporary as live for `remove_stale` of other processes (released at close). A
    // cleaner holds the lock only for a moment, so this waits at most that long.
    let _ = temp.as_file().lock();
    let tpath = temp.path().to_path_buf();
    // From here, dropping `temp` on an error path removes the temporary file.
    {
        let mut out = BufWriter::with_capacity(1 << 16, temp.as_file_mut());
        write(&mut out).map_err(|e| err("write", &tpath, e))?;
        out.flush().map_err(|e| err("write", &tpath, e))?;
    }
    if let Some(p) = perms {
        // The creation mode went through the umask; the replaced file's mode is kept exactly.
        temp.as_file().set_permissions(p).map_err(|e| err("set the permissions of", &tpath, e))?;
    }
    temp.as_file().sync_all().map_err(|e| err("flush to disk", &tpath, e))?;
    temp.persist(target).map_err(|e| err("rename a temporary file onto", target, e.error))?;
    // Make the rename durable. Not every file system lets a directory be synced; the file is
    // complete either way.
    #[cfg(unix)]
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes temporary files of this module's pattern for target `name` in `dir` that no live
/// writer holds (their writer was killed) and that are older than [`STALE_AFTER`]. Returns how
/// many were removed.
pub fn remove_stale(dir: &Path, name: &std::ffi::OsStr) -> usize {
    let prefix = temp_prefix(name);
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let n = file_name.as_encoded_bytes();
        let ours = n.len() == prefix.len() + TEMP_RANDOM + TEMP_SUFFIX.len()
            && n.starts_with(prefix)
            && n.ends_with(TEMP_SUFFIX.as_bytes());
        if !ours || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let old =
            entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE_AFTER));
        if !old {
            continue;
        }
        let p = entry.path();
        let Ok(f) = File::open(&p) else { continue };
        // A live writer holds the lock; a killed one released it with its process.
        if f.try_lock().is_ok() && fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// What makes two paths the same file: device and inode of an existing file (links followed),
/// or the resolved path of one that does not exist yet.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

/// The identity of `path` and whether it is a character device (which may be named twice).
fn identity(path: &Path) -> Option<(Identity, bool)> {
    if is_stdout(path) {
        return None;
    }
    match fs::metadata(path) {
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            Some((Identity::Inode(m.dev(), m.ino()), m.file_type().is_char_device()))
        }
        #[cfg(not(unix))]
        Ok(_) => fs::canonicalize(path).ok().map(|p| (Identity::Path(p), false)),
        Err(_) => {
            let target = resolve(path).ok()?;
            let (dir, name) = split(&target).ok()?;
            let dir = fs::canonicalize(&dir).unwrap_or(dir);
            Some((Identity::Path(dir.join(name)), false))
        }
    }
}

/// Refuses any output that is the same file as an input or as another output. Inputs and
/// outputs are `(what, path)`: `what` names the flag in the message (`--data`, `--out`, `the
/// model`). A character device (`/dev/null`) may be named more than once; `-` is never compared.
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), String> {
    let ins: Vec<_> = inputs.iter().filter_map(|(w, p)| identity(p).map(|id| (*w, *p, id))).collect();
    let outs: Vec<_> = outputs.iter().filter_map(|(w, p)| identity(p).map(|id| (*w, *p, id))).collect();
    for (i, (what, path, (id, dev))) in outs.iter().enumerate() {
        if *dev {
            continue;
        }
        if let Some((w, p, _)) = ins.iter().find(|(_, _, (other, _))| other == id) {
            return Err(format!(
                "{what} {} is the same file as {w} {}: writing it would destroy an input",
                path.display(),
                p.display()
            ));
        }
        if let Some((w, p, _)) = outs[..i].iter().find(|(_, _, (other, _))| other == id) {
            return Err(format!("{what} {} and {w} {} are the same file", path.display(), p.display()));
        }
    }
    Ok(())
}

/// An advisory lock that keeps two processes from writing the same output (`circ train --out`):
/// an exclusively locked file `.<name>.circ-lock` next to the output's target, removed when the
/// lock is dropped. A killed holder's lock is released by the system; its file is reused.
#[derive(Debug)]
pub struct Lock {
    /// The lock file and its path; `None` for a target that is not a regular file.
    held: Option<(PathBuf, File)>,
}

impl Lock {
    /// Takes the lock for the output `path`, or says why it cannot: `Ok(None)` when another
    /// process holds it. Outputs that are not regular files (`-`, devices) need no lock.
    pub fn acquire(path: &Path) -> Result<Option<Lock>, OutputError> {
        let err = |action, p: &Path, source| OutputError { action, path: p.to_path_buf(), source };
        if is_stdout(path) {
            return Err(err("lock", path, io::Error::other("standard output is not a file")));
        }
        let target = resolve(path).map_err(|e| err("resolve", path, e))?;
        if fs::metadata(&target).is_ok_and(|m| !m.is_file()) {
            return Ok(Some(Lock { held: None }));
        }
        let (dir, name) = split(&target).map_err(|e| err("lock", path, e))?;
        let mut lock_name = OsString::from(".");
        lock_name.push(&name);
        lock_name.push(".circ-lock");
        let lock_path = dir.join(lock_name);
        loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .map_err(|e| err("create the lock file", &lock_path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(err("lock", &lock_path, e)),
            }
            // The holder before us may have removed the file between our open and our lock:
            // then we hold a lock on a file nobody else sees. Try again on the current one.
            if same_file(&file, &lock_path) {
                return Ok(Some(Lock { held: Some((lock_path, file)) }));
            }
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove while holding the lock, so a waiting process re-checks (see `acquire`).
        if let Some((path, file)) = &self.held {
            let _ = fs::remove_file(path);
            let _ = file.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("circ-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn writable_outputs_are_checked_without_a_trace() {
        let d = dir("writable");
        check_writable(&d.join("new.txt")).unwrap();
        check_writable(Path::new("-")).unwrap();
        assert_eq!(names(&d), Vec::<String>::new(), "the probe is removed");
        let e = check_writable(&d.join("no/such/dir/a.txt")).unwrap_err();
        assert!(e.to_string().starts_with("cannot create a file in ") && e.to_string().contains("no/such/dir"), "{e}");
        let e = check_writable(&d).unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
    }

    #[test]
    fn replaces_atomically_and_leaves_no_temporary() {
        let d = dir("atomic");
        let p = d.join("a.txt");
        write_with(&p, |w| w.write_all(b"one")).unwrap();
        write_with(&p, |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(&d), ["a.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let d = dir("fail");
        let p = d.join("a.txt");
        fs::write(&p, "old").unwrap();
        let e = write_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(&d), ["a.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn writes_through_a_symlink_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("link");
        let real = d.join("real.txt");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink("real.txt", &link).unwrap();
        write_with(&link, |w| w.write_all(b"new")).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_are_written_not_replaced() {
        write_with(Path::new("/dev/null"), |w| w.write_all(b"x")).unwrap();
        assert!(!fs::metadata("/dev/null").unwrap().is_file());
        let e = write_with(Path::new("/dev/full"), |w| w.write_all(&[0; 100_000])).unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(28), "{e}"); // ENOSPC
    }

    #[test]
    fn stale_temporaries_are_removed_live_ones_kept() {
        let d = dir("stale");
        let aged = |p: &Path| {
            let f = fs::OpenOptions::new().write(true).create(true).truncate(false).open(p).unwrap();
            f.set_modified(std::time::SystemTime::now() - 2 * STALE_AFTER).unwrap();
            f
        };
        let stale = d.join(".a.txt.AbCdEfGh.circ-tmp");
        aged(&stale);
        let live = d.join(".a.txt.ZyXwVuTs.circ-tmp");
        let held = aged(&live);
        held.lock().unwrap();
        // Just created, not yet locked by its writer.
        let young = d.join(".a.txt.YyYyYyYy.circ-tmp");
        fs::write(&young, "").unwrap();
        let other = d.join(".b.txt.AbCdEfGh.circ-tmp");
        aged(&other);
        write_with(&d.join("a.txt"), |w| w.write_all(b"x")).unwrap();
        assert!(!stale.exists());
        assert!(live.exists() && young.exists() && other.exists());
    }

    #[test]
    fn same_files_are_refused() {
        let d = dir("same");
        let a = d.join("a.csv");
        fs::write(&a, "x").unwrap();
        let e = check_distinct(&[("--data", &a)], &[("--out", &d.join("./a.csv"))]).unwrap_err();
        assert!(e.contains("same file as --data"), "{e}");
        let e = check_distinct(&[], &[("--out", &d.join("n.st")), ("--plot", &d.join("n.st"))]).unwrap_err();
        assert!(e.contains("are the same file"), "{e}");
        check_distinct(&[("--data", &a)], &[("--out", &d.join("b.csv")), ("--plot", &d.join("c.png"))]).unwrap();
        check_distinct(&[], &[("--out", Path::new("/dev/null")), ("--plot", Path::new("/dev/null"))]).unwrap();
    }

    #[test]
    fn a_lock_excludes_a_second_holder() {
        let d = dir("lock");
        let p = d.join("c.st");
        let first = Lock::acquire(&p).unwrap().unwrap();
        assert!(Lock::acquire(&p).unwrap().is_none());
        drop(first);
        assert_eq!(names(&d), Vec::<String>::new());
        assert!(Lock::acquire(&p).unwrap().is_some());
    }
}
