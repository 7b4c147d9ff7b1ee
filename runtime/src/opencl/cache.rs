//! The on-disk program cache, as Futhark's and tinygrad's: one file per program binary, named by
//! a hash of the source, the build options, the device and its driver version. A binary the
//! driver rejects is rebuilt from source (and replaced).
//!
//! The hash is FNV-1a over 128 bits (two 64-bit lanes with different offsets): a cache key, not
//! a security boundary, and a dozen lines instead of a hashing crate.

use super::DeviceInfo;
use std::path::{Path, PathBuf};

fn fnv1a(bytes: &[u8], offset: u64) -> u64 {
    let mut h = offset;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The cache key of a program: 32 hex digits.
pub fn program_key(source: &str, options: &str, device: &DeviceInfo) -> String {
    let text = format!(
        "{source}\0{options}\0{}\0{}\0{}\0{}\0{}",
        device.platform, device.name, device.vendor, device.version, device.driver
    );
    let a = fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a(text.as_bytes(), 0x6c62_272e_07bb_0142);
    format!("{a:016x}{b:016x}")
}

/// Where binaries are kept: `$CIRC_CACHE_DIR`, else `$XDG_CACHE_HOME/circ/opencl`, else
/// `~/.cache/circ/opencl`; `None` when none can be made (the cache is then off).
pub fn cache_dir() -> Option<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("CIRC_CACHE_DIR") {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("circ").join("opencl")
    } else {
        PathBuf::from(std::env::var_os("HOME")?).join(".cache").join("circ").join("opencl")
    };
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// PoCL compiles into a cache directory of its own, fails when it cannot write one, and races
/// when several processes share one (pocl#430): unless the user chose one, each process gets its
/// own under the system's temporary directory, and those of processes that have ended are removed.
pub(super) fn prepare_pocl() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("POCL_CACHE_DIR").is_some() {
            return;
        }
        let root = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix("circ-pocl-").and_then(|p| p.parse::<u32>().ok()) else { continue };
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let mine = root.join(format!("circ-pocl-{}", std::process::id()));
        if std::fs::create_dir_all(&mine).is_ok() {
            std::env::set_var("POCL_CACHE_DIR", mine);
        }
    });
}

pub(super) fn load(dir: &Path, key: &str) -> Option<Vec<u8>> {
    let bin = std::fs::read(dir.join(format!("{key}.bin"))).ok()?;
    (!bin.is_empty()).then_some(bin)
}

/// Stores a binary atomically (a unique temporary, then a rename); a failure only costs the
/// next run a build.
pub(super) fn store(dir: &Path, key: &str, bin: &[u8]) {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
    let ok = std::fs::write(&tmp, bin).and_then(|_| std::fs::rename(&tmp, dir.join(format!("{key}.bin"))));
    if ok.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(driver: &str) -> DeviceInfo {
        DeviceInfo {
            platform: "p".into(),
            name: "d".into(),
            vendor: "v".into(),
            version: "OpenCL 1.2".into(),
            driver: driver.into(),
            kind: "CPU",
            global_mem: 0,
            max_alloc: 0,
            local_mem: 0,
            compute_units: 1,
            max_work_group: 1,
        }
    }

    #[test]
    fn keys_change_with_source_options_and_driver() {
        let k = program_key("a", "-cl-std=CL1.2", &device("1"));
        assert_eq!(k.len(), 32);
        assert_eq!(k, program_key("a", "-cl-std=CL1.2", &device("1")));
        assert_ne!(k, program_key("b", "-cl-std=CL1.2", &device("1")));
        assert_ne!(k, program_key("a", "", &device("1")));
        assert_ne!(k, program_key("a", "-cl-std=CL1.2", &device("2")));
    }
}
