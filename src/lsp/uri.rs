//! `file:` URIs and paths, and the standard library as files an editor can open.
//!
//! The stdlib is compiled into the binary; go-to-definition into it needs a location the editor
//! can open. A custom scheme (`circ-stdlib:`) would need code in every editor's client, so the
//! server writes each stdlib module, read-only, to `<cache>/stdlib/<hash>/<name>.circ` (the
//! hash of the text, so binaries of different versions never share a file) and points there.

use crate::front::loader::STDLIB;
use lsp_types::Uri;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The path a `file:` URI names; `None` for other schemes and for URIs naming another host.
pub fn to_path(uri: &Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    // `file:///p` or `file://localhost/p`; an authority naming another machine is no local path.
    let path = match rest.strip_prefix("localhost") {
        Some(p) => p,
        None => rest,
    };
    if !path.starts_with('/') {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes = percent_decode(path)?;
    from_bytes(bytes)
}

#[cfg(unix)]
fn from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    let s = String::from_utf8(bytes).ok()?;
    // `/C:/x` is the drive path `C:/x`.
    let s = match s.as_bytes() {
        [b'/', d, b':', ..] if d.is_ascii_alphabetic() => s[1..].to_string(),
        _ => s,
    };
    Some(PathBuf::from(s))
}

/// The `file:` URI of an absolute path (`None` for a relative one).
pub fn from_path(path: &Path) -> Option<Uri> {
    if !path.is_absolute() {
        return None;
    }
    let mut s = String::from("file://");
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = {
        let p = path.to_string_lossy().replace('\\', "/");
        if p.starts_with('/') {
            p.into_bytes()
        } else {
            format!("/{p}").into_bytes()
        }
    };
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&s).ok()
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Where the stdlib is served from: `$CIRC_CACHE_DIR/stdlib`, else `$XDG_CACHE_HOME/circ/stdlib`,
/// else `~/.cache/circ/stdlib`, else the system's temporary folder; then a folder named after a
/// hash of the stdlib's text. Every module is written there (once: a file already holding the
/// same text is left alone). `None` when nothing can be written: definitions in the stdlib then
/// have no location.
pub fn serve_stdlib() -> Option<PathBuf> {
    let base = if let Some(d) = std::env::var_os("CIRC_CACHE_DIR") {
        PathBuf::from(d).join("stdlib")
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("circ").join("stdlib")
    } else if let Some(home) = std::env::var_os("HOME") {
        PathBuf::from(home).join(".cache").join("circ").join("stdlib")
    } else {
        std::env::temp_dir().join("circ-stdlib")
    };
    let dir = base.join(stdlib_hash());
    write_stdlib(&dir).ok().map(|()| dir)
}

/// Writes every stdlib module into `dir` as `<name>.circ`, read-only.
pub fn write_stdlib(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in STDLIB {
        let path = dir.join(format!("{name}.circ"));
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        circ_runtime::files::output::write_with(&path, |w| w.write_all(text.as_bytes()))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // Read-only, so that an editor warns before an edit that the server would never see.
        let mut perms = std::fs::metadata(&path)?.permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&path, perms)?;
    }
    Ok(())
}

/// FNV-1a of every stdlib module's name and text, as 16 hex digits.
fn stdlib_hash() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, text) in STDLIB {
        for b in name.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_uris() {
        for p in ["/tmp/a.circ", "/tmp/with space/é#x%y.circ", "/"] {
            let uri = from_path(Path::new(p)).unwrap();
            assert!(uri.as_str().starts_with("file:///"), "{}", uri.as_str());
            assert_eq!(to_path(&uri).unwrap(), PathBuf::from(p), "{}", uri.as_str());
        }
        assert_eq!(from_path(Path::new("/a b")).unwrap().as_str(), "file:///a%20b");
        assert_eq!(from_path(Path::new("relative.circ")), None);
    }

    #[test]
    fn other_uris_have_no_path() {
        for u in ["untitled:Untitled-1", "file://server/share/x.circ", "https://example.com/x.circ"] {
            assert_eq!(to_path(&Uri::from_str(u).unwrap()), None, "{u}");
        }
        let local = Uri::from_str("file://localhost/tmp/x%20y.circ").unwrap();
        assert_eq!(to_path(&local), Some(PathBuf::from("/tmp/x y.circ")));
    }

    #[test]
    fn stdlib_is_written_once_and_read_only() {
        let dir = std::env::temp_dir().join(format!("circ-lsp-stdlib-{}", std::process::id()));
        write_stdlib(&dir).unwrap();
        let path = dir.join("nn.circ");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), STDLIB[0].1);
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
        // A second server finds the files in place.
        write_stdlib(&dir).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
