//! The OpenCL driver of the bundled runtime: devices, one context and in-order queue, programs
//! built from source (and cached on disk), one device arena of `f32`, kernel launches. It knows
//! nothing of the language or the IR: the compiler (`circ::backend::opencl`) hands it OpenCL C
//! source, kernel names, offsets and sizes.
//!
//! Bound through the `opencl3` crate, which loads the ICD loader (`libOpenCL.so.1`) at run time:
//! one binary builds on every machine, and only asking for a device needs OpenCL installed.

mod cache;

pub use cache::{cache_dir, program_key};

use opencl3::command_queue::CommandQueue;
use opencl3::context::Context;
use opencl3::device::{Device, CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU};
use opencl3::kernel::Kernel;
use opencl3::memory::{Buffer, ClMem, CL_MEM_READ_WRITE};
use opencl3::platform::get_platforms;
use opencl3::program::Program;
use opencl3::types::{cl_device_id, CL_BLOCKING};
use std::time::{Duration, Instant};

/// How to get an OpenCL platform, said whenever there is none.
pub const INSTALL_HINT: &str = "install one: `apt-get install pocl-opencl-icd` for a CPU device (PoCL), \
or your GPU vendor's OpenCL driver";

/// Why the driver failed.
#[derive(Clone, Debug, PartialEq)]
pub enum DriverError {
    /// No ICD loader, or a loader with no platform.
    NoPlatform(String),
    /// `--device N` past the devices there are.
    NoDevice { index: usize, count: usize },
    /// An OpenCL call failed.
    Call { what: String, code: i32 },
    /// The program did not compile; the compiler's log.
    Build(String),
    /// An arena larger than the device allows in one buffer.
    TooLarge { bytes: u64, max: u64, device: String },
    /// A launch or copy outside the arena, or arguments that do not fit the kernel.
    Usage(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::NoPlatform(why) => write!(f, "no OpenCL platform is installed ({why}); {INSTALL_HINT}"),
            DriverError::NoDevice { index, count } => {
                write!(f, "there is no OpenCL device {index}: {count} found (`circ devices` lists them)")
            }
            DriverError::Call { what, code } => {
                write!(f, "OpenCL failed to {what}: {} ({code})", opencl3::error_codes::error_text(*code))
            }
            DriverError::Build(log) => write!(f, "the OpenCL program did not build:\n{log}"),
            DriverError::TooLarge { bytes, max, device } => {
                write!(f, "the run needs a buffer of {bytes} bytes; {device} allows at most {max} bytes in one buffer")
            }
            DriverError::Usage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DriverError {}

fn call<T>(what: &str, r: Result<T, opencl3::error_codes::ClError>) -> Result<T, DriverError> {
    r.map_err(|e| DriverError::Call { what: what.to_string(), code: e.0 })
}

/// One device as `circ devices` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub platform: String,
    pub name: String,
    pub vendor: String,
    /// `OpenCL 3.0 …` as the device reports it.
    pub version: String,
    pub driver: String,
    /// GPU, CPU, accelerator or other.
    pub kind: &'static str,
    pub global_mem: u64,
    pub max_alloc: u64,
    pub local_mem: u64,
    pub compute_units: u32,
    pub max_work_group: usize,
}

fn kind_name(t: u64) -> &'static str {
    if t & CL_DEVICE_TYPE_GPU != 0 {
        "GPU"
    } else if t & CL_DEVICE_TYPE_CPU != 0 {
        "CPU"
    } else if t & CL_DEVICE_TYPE_ACCELERATOR != 0 {
        "accelerator"
    } else {
        "other"
    }
}

/// Every device of every platform, in platform order: `--device N` indexes this list.
fn all_devices() -> Result<Vec<(String, cl_device_id)>, DriverError> {
    // The ICD loader and PoCL initialise on first use; two threads listing at once could see no
    // device (seen in the tests), so listing is one thread at a time.
    static LISTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = LISTING.lock().unwrap_or_else(|e| e.into_inner());
    let platforms = get_platforms().map_err(|e| {
        let why = match e.0 {
            opencl3::error_codes::DLOPEN_RUNTIME_LOAD_FAILED => "the OpenCL loader libOpenCL.so.1 was not found".into(),
            -1001 => "the OpenCL loader found no platform".into(),
            c => format!("listing platforms failed with {}", opencl3::error_codes::error_text(c)),
        };
        DriverError::NoPlatform(why)
    })?;
    if platforms.is_empty() {
        return Err(DriverError::NoPlatform("the OpenCL loader found no platform".into()));
    }
    let mut out = Vec::new();
    for p in platforms {
        let name = p.name().unwrap_or_default();
        // A platform with no device answers CL_DEVICE_NOT_FOUND: it has none to add.
        for d in p.get_devices(CL_DEVICE_TYPE_ALL).unwrap_or_default() {
            out.push((name.clone(), d));
        }
    }
    if out.is_empty() {
        return Err(DriverError::NoPlatform("no OpenCL platform has a device".into()));
    }
    Ok(out)
}

fn describe(platform: &str, id: cl_device_id) -> DeviceInfo {
    let d = Device::new(id);
    DeviceInfo {
        platform: platform.to_string(),
        name: d.name().unwrap_or_default().trim().to_string(),
        vendor: d.vendor().unwrap_or_default().trim().to_string(),
        version: d.version().unwrap_or_default().trim().to_string(),
        driver: d.driver_version().unwrap_or_default().trim().to_string(),
        kind: kind_name(d.dev_type().unwrap_or(0)),
        global_mem: d.global_mem_size().unwrap_or(0),
        max_alloc: d.max_mem_alloc_size().unwrap_or(0),
        local_mem: d.local_mem_size().unwrap_or(0),
        compute_units: d.max_compute_units().unwrap_or(0),
        max_work_group: d.max_work_group_size().unwrap_or(1),
    }
}

/// Every OpenCL device on this machine.
pub fn devices() -> Result<Vec<DeviceInfo>, DriverError> {
    cache::prepare_pocl();
    Ok(all_devices()?.iter().map(|(p, d)| describe(p, *d)).collect())
}

/// A compiled program and its kernels, by the names it was built with.
pub struct Executable {
    // Kernels before the program: they are released first.
    kernels: Vec<Kernel>,
    _program: Program,
    /// Whether the binary came from the on-disk cache.
    pub from_cache: bool,
    /// Time to build (or load) the program.
    pub build_time: Duration,
}

impl Executable {
    pub fn kernel_count(&self) -> usize {
        self.kernels.len()
    }
}

/// The one device buffer a run lays its values out in.
pub struct Arena {
    buffer: Buffer<f32>,
    len: usize,
}

impl Arena {
    /// Elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One kernel argument after the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    U64(u64),
    I32(i32),
}

/// An open device: its context, one in-order queue.
pub struct Driver {
    queue: CommandQueue,
    context: Context,
    device: Device,
    info: DeviceInfo,
}

impl Driver {
    /// Opens device `index` of [`devices`]; with `None`, the first GPU, else the first device
    /// (a machine may list PoCL's CPU device before its GPU).
    pub fn open(index: Option<usize>) -> Result<Driver, DriverError> {
        cache::prepare_pocl();
        let all = all_devices()?;
        let index = index.unwrap_or_else(|| {
            all.iter()
                .position(|(_, d)| Device::new(*d).dev_type().is_ok_and(|t| t & CL_DEVICE_TYPE_GPU != 0))
                .unwrap_or(0)
        });
        let (platform, id) = all.get(index).cloned().ok_or(DriverError::NoDevice { index, count: all.len() })?;
        let device = Device::new(id);
        let context = call("create a context", Context::from_device(&device))?;
        #[allow(deprecated)] // clCreateCommandQueue: OpenCL 1.2 devices have no other.
        let queue = call("create a command queue", CommandQueue::create_default(&context, 0))?;
        Ok(Driver { queue, context, device, info: describe(&platform, id) })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Builds `source` with `options` and creates the kernels `names`, loading the binary from
    /// the on-disk cache when one was stored for the same source, options, device and driver
    /// (a binary the driver rejects is rebuilt from source and replaced).
    pub fn build(&self, source: &str, options: &str, names: &[&str]) -> Result<Executable, DriverError> {
        let start = Instant::now();
        let key = program_key(source, options, &self.info);
        let dir = cache_dir();
        let devices = [self.device.id()];
        let mut from_cache = false;
        let mut program = None;
        if let Some(bin) = dir.as_ref().and_then(|d| cache::load(d, &key)) {
            // SAFETY: the device is the context's own.
            let p = unsafe { Program::create_from_binary(&self.context, &devices, &[&bin]) };
            if let Ok(mut p) = p {
                if p.build(&devices, options).is_ok() {
                    from_cache = true;
                    program = Some(p);
                }
            }
        }
        let program = match program {
            Some(p) => p,
            None => {
                let mut p = call("create a program", Program::create_from_source(&self.context, source))?;
                if p.build(&devices, options).is_err() {
                    let log = p.get_build_log(self.device.id()).unwrap_or_default();
                    return Err(DriverError::Build(log));
                }
                if let (Some(d), Ok(bins)) = (dir.as_ref(), p.get_binaries()) {
                    if let Some(bin) = bins.first().filter(|b| !b.is_empty()) {
                        cache::store(d, &key, bin);
                    }
                }
                p
            }
        };
        let mut kernels = Vec::with_capacity(names.len());
        for n in names {
            kernels.push(call(&format!("create kernel `{n}`"), Kernel::create(&program, n))?);
        }
        Ok(Executable { kernels, _program: program, from_cache, build_time: start.elapsed() })
    }

    /// A zeroed arena of `len` elements; refused when the device allows no buffer that large.
    pub fn arena(&self, len: usize) -> Result<Arena, DriverError> {
        let bytes = (len.max(1) as u64).saturating_mul(4);
        if bytes > self.info.max_alloc || bytes > self.info.global_mem {
            return Err(DriverError::TooLarge {
                bytes,
                max: self.info.max_alloc.min(self.info.global_mem),
                device: self.info.name.clone(),
            });
        }
        // SAFETY: no host pointer; the size is checked above.
        let mut buffer = call("allocate the device arena", unsafe {
            Buffer::<f32>::create(&self.context, CL_MEM_READ_WRITE, len.max(1), std::ptr::null_mut())
        })?;
        let zeros = vec![0f32; len.max(1)];
        // SAFETY: `zeros` has the buffer's length and the write blocks.
        call("clear the device arena", unsafe {
            self.queue.enqueue_write_buffer(&mut buffer, CL_BLOCKING, 0, &zeros, &[])
        })?;
        Ok(Arena { buffer, len })
    }

    fn check(arena: &Arena, offset: usize, len: usize) -> Result<(), DriverError> {
        if offset.checked_add(len).is_none_or(|end| end > arena.len.max(1)) {
            return Err(DriverError::Usage(format!(
                "elements {offset}..{} are outside the arena of {}",
                offset + len,
                arena.len
            )));
        }
        Ok(())
    }

    /// Writes `data` at element `offset` (blocking: `data` may be reused at once).
    pub fn write(&self, arena: &mut Arena, offset: usize, data: &[f32]) -> Result<(), DriverError> {
        Self::check(arena, offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: the region is inside the buffer (checked) and the write blocks.
        call("write to the device", unsafe {
            self.queue.enqueue_write_buffer(&mut arena.buffer, CL_BLOCKING, offset * 4, data, &[])
        })?;
        Ok(())
    }

    /// Reads `out.len()` elements at element `offset`, after every launch before it.
    pub fn read(&self, arena: &Arena, offset: usize, out: &mut [f32]) -> Result<(), DriverError> {
        Self::check(arena, offset, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        // SAFETY: the region is inside the buffer (checked) and the read blocks.
        call("read from the device", unsafe {
            self.queue.enqueue_read_buffer(&arena.buffer, CL_BLOCKING, offset * 4, out, &[])
        })?;
        Ok(())
    }

    /// Copies `len` elements from `from` to `to` inside the arena (the regions must not
    /// overlap), after every launch before it.
    pub fn copy(&self, arena: &mut Arena, from: usize, to: usize, len: usize) -> Result<(), DriverError> {
        Self::check(arena, from, len)?;
        Self::check(arena, to, len)?;
        if from.max(to) < from.min(to) + len {
            return Err(DriverError::Usage("overlapping copy inside the arena".into()));
        }
        if len == 0 {
            return Ok(());
        }
        let mem = arena.buffer.get();
        // SAFETY: both regions are inside the buffer and apart (checked above).
        call("copy inside the device arena", unsafe {
            opencl3::command_queue::enqueue_copy_buffer(
                self.queue.get(),
                mem,
                mem,
                from * 4,
                to * 4,
                len * 4,
                0,
                std::ptr::null(),
            )
            .map_err(opencl3::error_codes::ClError)
        })
        .map(|e| {
            // The event is not waited on (the queue is in order); release it.
            let _ = opencl3::event::Event::new(e);
        })
    }

    /// Launches kernel `kernel` of `exe` on `arena` with `args` after it; `global[i]` must be a
    /// multiple of `local[i]` (the caller rounds up and the kernel guards).
    pub fn launch(
        &self,
        exe: &Executable,
        kernel: usize,
        arena: &Arena,
        args: &[Arg],
        global: &[usize],
        local: &[usize],
    ) -> Result<(), DriverError> {
        let k = exe.kernels.get(kernel).ok_or_else(|| DriverError::Usage(format!("no kernel {kernel}")))?;
        if global.len() != local.len() || global.is_empty() || global.len() > 3 {
            return Err(DriverError::Usage("a launch needs one to three dimensions".into()));
        }
        if global.iter().zip(local).any(|(g, l)| *l == 0 || g % l != 0) {
            return Err(DriverError::Usage(format!("global size {global:?} is no multiple of {local:?}")));
        }
        if global.contains(&0) {
            return Ok(());
        }
        if local.iter().product::<usize>() > self.info.max_work_group {
            return Err(DriverError::Usage(format!(
                "work-group {local:?} is larger than {} allows ({})",
                self.info.name, self.info.max_work_group
            )));
        }
        let mem = arena.buffer.get();
        // SAFETY: argument 0 is the kernel's `__global float*`, the others its `ulong`/`int`
        // arguments in order (the renderer's calling convention); OpenCL checks their sizes.
        unsafe {
            call("set a kernel argument", k.set_arg(0, &mem))?;
            for (i, a) in args.iter().enumerate() {
                let r = match a {
                    Arg::U64(v) => k.set_arg((i + 1) as u32, v),
                    Arg::I32(v) => k.set_arg((i + 1) as u32, v),
                };
                call("set a kernel argument", r)?;
            }
            let e = call(
                "launch a kernel",
                self.queue.enqueue_nd_range_kernel(
                    k.get(),
                    global.len() as u32,
                    std::ptr::null(),
                    global.as_ptr(),
                    local.as_ptr(),
                    &[],
                ),
            )?;
            drop(e);
        }
        Ok(())
    }

    /// Waits for everything queued.
    pub fn finish(&self) -> Result<(), DriverError> {
        call("finish the queue", self.queue.finish())
    }
}
