//! Calling a compiled kernel: buffers checked, and big kernels split into bands of rows run on
//! the run's crew of threads.

use super::{BackendError, ExecError, NodeId};
use crate::ir::op::ReduceOp;
use circ_runtime::cpu::team::{Crew, MAX_PARTS};

/// Calls a compiled kernel; `buffer(x)` gives the value `x`'s pointer, the number of `f32`s
/// available from it, and the node's element count. Every length is checked before the call.
/// A large kernel whose rows can run apart is split into `PIECES_PER_THREAD` bands of rows of
/// axis 0 per thread of `crew`; one whose sum or max reduces over axis 0 too, each band after the first reducing
/// into a partial buffer of its own, added to (or maxed with) the output in band order after
/// the bands: the same bits on every run with the same thread count.
pub(super) fn call(
    jk: &crate::backend::cpu::ElementwiseKernel,
    dims: &[usize],
    bufs: &mut Vec<*mut f32>,
    crew: Option<&Crew>,
    mut buffer: impl FnMut(NodeId) -> Result<(*mut f32, usize, usize), ExecError>,
) -> Result<bool, ExecError> {
    bufs.clear();
    for (i, x) in jk.inputs().iter().enumerate() {
        let (ptr, room, len) = buffer(*x)?;
        let n = jk.input_len(i, dims);
        if n > room || n > len.max(1) {
            return Err(BackendError::Run(format!("input {x} does not fit its buffer")).into());
        }
        bufs.push(ptr);
    }
    for (o, y) in jk.outputs().iter().enumerate() {
        let (ptr, room, len) = buffer(*y)?;
        let n = jk.output_len(o, dims);
        if n > room || n != len {
            return Err(BackendError::Run(format!("output {y} does not fit its buffer")).into());
        }
        bufs.push(ptr);
    }
    let rows = dims.first().copied().unwrap_or(1);
    let bands = crew.map_or(1, |c| c.threads() * PIECES_PER_THREAD).min(rows).min(MAX_PARTS);
    // A reduction over axis 0 splits too: each band into a partial result of its own.
    let partial = if jk.splits_rows() { None } else { jk.partial_reduction() };
    let splits = jk.splits_rows() || partial.is_some();
    if bands < 2 || !splits || dims.iter().product::<usize>() < PARALLEL_ELEMENTS {
        // SAFETY: every pointer has room for what the kernel reads or writes for `dims` (checked
        // above: each buffer holds its node's element count, which is what the kernel indexes);
        // the buffer plan gives a kernel's outputs slots distinct from each other and from every
        // slot it reads (but an update over the leaf it is computed from, which the calling
        // convention allows), and the product of a matmul kernel lives in its own slot or vector.
        unsafe { jk.call(bufs.as_ptr(), dims.as_ptr()) };
        return Ok(false);
    }
    let strides: Vec<usize> = (0..bufs.len()).map(|b| jk.row_stride(b, dims)).collect();
    // Bands after the first reduce into partial buffers of the reduction's size.
    let reduced = partial.map(|(o, _)| (jk.inputs().len() + o, jk.output_len(o, dims)));
    let mut partials: Vec<Vec<f32>> = match reduced {
        Some((_, len)) => (1..bands).map(|_| vec![0.0; len]).collect(),
        None => Vec::new(),
    };
    let work: Vec<(SendPtrs, Vec<usize>)> = (0..bands)
        .map(|band| {
            let (start, end) = (rows * band / bands, rows * (band + 1) / bands);
            let mut band_dims = dims.to_vec();
            band_dims[0] = end - start;
            // SAFETY (of `add`): row `start < rows` of each buffer lies inside it.
            let mut ptrs: Vec<*mut f32> = bufs.iter().zip(&strides).map(|(p, s)| unsafe { p.add(start * s) }).collect();
            if let (Some((b, _)), Some(mine)) = (reduced, band.checked_sub(1).and_then(|i| partials.get_mut(i))) {
                ptrs[b] = mine.as_mut_ptr();
            }
            (SendPtrs(ptrs), band_dims)
        })
        .collect();
    let crew = crew.expect("bands only with a crew");
    crew.fork(work.len(), &|band| {
        if let Some((ptrs, band_dims)) = work.get(band) {
            // SAFETY: as in the single call, for this band's rows: each band reads its rows of
            // the inputs (or whole inputs that do not vary along axis 0) and writes only its
            // own rows of every output, and a reduction over axis 0 into a partial buffer of
            // its own (band 0 into the output), so bands never write the same element.
            unsafe { jk.call(ptrs.as_ptr(), band_dims.as_ptr()) };
        }
    });
    if let (Some((b, len)), Some((_, f))) = (reduced, partial) {
        // SAFETY: the reduction's buffer holds `len` elements (checked above, as an output).
        let out = unsafe { std::slice::from_raw_parts_mut(bufs[b], len) };
        for p in &partials {
            for (o, x) in out.iter_mut().zip(p) {
                *o = match f {
                    ReduceOp::Max if o.is_nan() || x.is_nan() => f32::NAN,
                    ReduceOp::Max => o.max(*x),
                    _ => *o + *x,
                };
            }
        }
    }
    Ok(true)
}

/// Bands per thread a split kernel is cut into: more pieces than threads, so that the threads
/// that run take over the pieces of one the OS has descheduled (`circ_runtime::cpu::team`).
/// Fixed by the thread count alone, so a run repeats bit for bit.
pub(super) const PIECES_PER_THREAD: usize = 4;

/// Elementwise kernels with at least this many elements are split between threads.
pub(super) const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Buffer pointers handed to another thread (the bands of one kernel write disjoint rows).
struct SendPtrs(Vec<*mut f32>);
// SAFETY: the pointers are only dereferenced by generated code under the conditions stated at
// its call in `call`.
unsafe impl Send for SendPtrs {}
unsafe impl Sync for SendPtrs {}

impl SendPtrs {
    /// Through a method, so that a closure captures the whole (`Send`) value.
    fn as_ptr(&self) -> *const *mut f32 {
        self.0.as_ptr()
    }
}
