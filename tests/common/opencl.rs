//! Whether an OpenCL device is there to test on, shared by the test crates that need one.

/// Without a device the caller's test passes with a printed reason, except under `CI=true`
/// (where `.ci/run` installs PoCL), where a missing platform fails it.
pub fn opencl_available(test: &str) -> bool {
    match circ_runtime::opencl::devices() {
        Ok(d) if !d.is_empty() => true,
        other => {
            let why = other.err().map_or_else(|| "no device".to_string(), |e| e.to_string());
            assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{test}: CI=true and no OpenCL device: {why}");
            println!("{test}: skipped: {why}");
            false
        }
    }
}
