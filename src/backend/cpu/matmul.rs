//! Matrix products of the executor: numpy `matmul` semantics (1-D operands promoted, batch axes
//! broadcast) on top of the `gemm` crate's packed, cache-blocked micro-kernels (AVX2/AVX-512 FMA).
//! `benches/gemm.rs` measures it against a micro-kernel generated in Cranelift IR
//! (`gemm_clif.rs`): Cranelift lowers 128-bit vectors only, so the crate wins at every size there
//! (see that file's table).
//!
//! An operand may be *transposed*: its buffer holds the transpose of the operand, dense, and the
//! product reads it with swapped strides instead of copying it first (the kernel partition makes
//! `transpose` of the last two axes feeding only products such a view). One exception: a
//! transposed B with a moderate inner size is copied back into B's own layout first, a band of
//! columns at a time into a per-thread scratch ([`transpose_into`]), because the crate packs it
//! slowly read that way (the backward product `dz · Wᵀ`; numbers at [`B_COPY_MAX_K`]). And a
//! transposed A against a thin B (`hᵀ · dz` of a layer with few outputs) is computed into a
//! column-major scratch and transposed into place ([`THIN_N`]).

use circ_runtime::cpu::team::{Crew, Team, MAX_PARTS};
use gemm::Parallelism;

/// One operand of a product: its buffer and its logical shape.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    pub data: *const f32,
    pub shape: &'a [usize],
    /// The buffer holds the operand with its last two axes swapped.
    pub transposed: bool,
}

/// Products with at least this many multiply-adds are split over threads (a fork on the
/// spinning team costs about a microsecond).
pub const PARALLEL_FLOPS: usize = 1 << 20;

/// A transposed B is copied into B's own layout before the product when its inner size `k` is
/// at most this (and at least [`B_COPY_MIN`], as are the result's rows and columns). One core
/// of an AMD EPYC (Zen 4, AVX-512), `gemm` 0.19, m × k × n with B transposed, read in place →
/// copied first: 128 × 256 × 256 214 → 179 µs, 8 × 256 × 784 188 → 81 µs, 512 × 256 × 256
/// 676 → 618 µs; with k = 784 copying gained nothing or lost up to 12% (the crate then splits
/// `k` into blocks and packs either layout at the same speed), and below 32 it is a wash.
const B_COPY_MAX_K: usize = 512;
const B_COPY_MIN: usize = 32;

/// The most floats of a thread's scratch (1 MiB): B's columns are copied, and a thin result's
/// rows computed, in chunks that fit.
const SCRATCH_FLOATS: usize = 1 << 18;

/// A transposed A against a B of at most this many columns (a weight gradient `hᵀ · dz` of a
/// layer with few outputs) is computed into a column-major scratch, which the crate writes
/// fastest for such a thin result, then transposed into place. One core, m × k × n, in place →
/// column-major: 256 × 128 × 10 13.4 → 9.6 µs, 784 × 128 × 10 38.8 → 23.6 µs, 128 × 64 × 10
/// 4.3 → 3.1 µs, 256 × 128 × 3 10.9 → 2.6 µs; with 16 columns it lost (9.6 → 12.2 µs), with
/// a plain A too (12.7 → 37 µs at 128 × 256 × 10).
const THIN_N: usize = 12;

/// `out = a · b` with numpy `matmul` semantics on up to `threads` threads (the process's
/// team, when no other run holds it); `out` has the result's shape `out_shape`.
/// Errors when the shapes do not fit (never when they come from a verified graph).
///
/// # Safety
/// `a.data` and `b.data` hold at least as many elements as their shapes; `out` holds
/// `out_shape`'s element count and overlaps neither operand.
pub unsafe fn product(
    a: Operand,
    b: Operand,
    out: *mut f32,
    out_shape: &[usize],
    threads: usize,
) -> Result<(), String> {
    let team = (threads > 1).then(|| Team::of(threads));
    let crew = team.as_ref().and_then(|t| t.crew());
    product_on(a, b, out, out_shape, crew.as_ref())
}

/// [`product`] on a crew already taken. A product of at least [`PARALLEL_FLOPS`] is split into
/// one band per thread, each a `gemm` call of its own on one thread: bands of rows, or of
/// columns when B is the larger operand (each thread then packs half of it); a batch of
/// matrices is split by matrices.
///
/// # Safety
/// As [`product`].
pub(super) unsafe fn product_on(
    a: Operand,
    b: Operand,
    out: *mut f32,
    out_shape: &[usize],
    crew: Option<&Crew>,
) -> Result<(), String> {
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err("matmul of a scalar".into());
    }
    // Promote 1-D operands: [k] is [1, k] on the left, [k, 1] on the right.
    let a2: Vec<usize> = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.to_vec() };
    let b2: Vec<usize> = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    let (m, k, k2, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
    if k != k2 {
        return Err(format!("matmul of {:?} and {:?}: inner sizes {k} and {k2} differ", a.shape, b.shape));
    }
    let (a_batch, b_batch) = (&a2[..ra - 2], &b2[..rb - 2]);
    let rank = a_batch.len().max(b_batch.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
    let (ab, bb) = (pad(a_batch), pad(b_batch));
    let mut batch = Vec::with_capacity(rank);
    for (x, y) in ab.iter().zip(&bb) {
        batch.push(match (x, y) {
            (x, y) if x == y => *x,
            (1, y) => *y,
            (x, 1) => *x,
            _ => return Err(format!("matmul of {:?} and {:?}: batch axes do not broadcast", a.shape, b.shape)),
        });
    }
    let count: usize = batch.iter().product::<usize>() * m * n;
    if count != out_shape.iter().product::<usize>() {
        return Err(format!("matmul of {:?} and {:?} does not give {out_shape:?}", a.shape, b.shape));
    }
    // Element strides (row, column) of one matrix of each operand.
    let strides = |transposed: bool, rows: usize, cols: usize| -> (isize, isize) {
        if transposed {
            (1, rows as isize)
        } else {
            (cols as isize, 1)
        }
    };
    let (a_rs, a_cs) = strides(a.transposed, m, k);
    let (b_rs, b_cs) = strides(b.transposed, k, n);
    let matrices: usize = batch.iter().product();
    let threads = crew.map_or(1, |c| c.threads());
    let split = threads > 1 && matrices * m * n * k >= PARALLEL_FLOPS;
    // Offsets of batch index `t` in each operand (broadcast axes stay at 0).
    let offsets = |t: usize| {
        let (mut ao, mut bo, mut rest) = (0usize, 0usize, t);
        let mut index = vec![0usize; rank];
        for j in (0..rank).rev() {
            index[j] = rest % batch[j];
            rest /= batch[j];
        }
        for (j, &i) in index.iter().enumerate() {
            ao = ao * ab[j] + if ab[j] == 1 { 0 } else { i };
            bo = bo * bb[j] + if bb[j] == 1 { 0 } else { i };
        }
        (ao, bo)
    };
    let (a_data, b_data, out) = (Shared(a.data as *mut f32), Shared(b.data as *mut f32), Shared(out));
    let copy_b = b.transposed && (B_COPY_MIN..=B_COPY_MAX_K).contains(&k) && m >= B_COPY_MIN && n >= B_COPY_MIN;
    let thin = a.transposed && !b.transposed && n <= THIN_N;
    // Rows `rows` × columns `cols` of the result at `dst` (strides `(row, column)`) from A's
    // rows at `lhs` and B's columns at `rhs` (strides `(row, column)`), on this thread.
    let kernel = |rows: usize,
                  cols: usize,
                  dst: *mut f32,
                  (dst_rs, dst_cs): (isize, isize),
                  lhs: *const f32,
                  rhs: *const f32,
                  (rhs_rs, rhs_cs): (isize, isize)| {
        gemm::gemm(
            rows,
            cols,
            k,
            dst,
            dst_cs,
            dst_rs,
            false,
            lhs,
            a_cs,
            a_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    };
    // Rows `r` and columns `c` of matrix `t`, on this thread.
    let block = |t: usize, r: std::ops::Range<usize>, c: std::ops::Range<usize>| {
        let (ao, bo) = offsets(t);
        let dst = out.get().add(t * m * n + r.start * n + c.start);
        let (rows, cols) = (r.len(), c.len());
        if rows == 0 || cols == 0 {
            return;
        }
        if k == 0 {
            for i in 0..rows {
                std::ptr::write_bytes(dst.add(i * n), 0, cols);
            }
            return;
        }
        let lhs = a_data.get().add(ao * m * k).offset(r.start as isize * a_rs);
        let b_matrix = b_data.get().add(bo * k * n);
        if thin && cols == n {
            let chunk = (SCRATCH_FLOATS / n).max(1);
            with_scratch(chunk.min(rows) * n, |scratch| {
                for start in (0..rows).step_by(chunk) {
                    let height = chunk.min(rows - start);
                    let scratch = &mut scratch[..height * n];
                    // Column-major: row stride 1, column stride `height`.
                    let lhs = lhs.offset(start as isize * a_rs);
                    kernel(height, n, scratch.as_mut_ptr(), (1, height as isize), lhs, b_matrix, (b_rs, b_cs));
                    // The scratch holds the chunk's transpose (n × height); the chunk is whole
                    // rows of the result, so one dense height × n block.
                    let block = std::slice::from_raw_parts_mut(dst.add(start * n), height * n);
                    transpose_into(scratch, n, height, block);
                }
            });
            return;
        }
        if !copy_b {
            kernel(rows, cols, dst, (n as isize, 1), lhs, b_matrix.offset(c.start as isize * b_cs), (b_rs, b_cs));
            return;
        }
        let chunk = (SCRATCH_FLOATS / k).max(1);
        with_scratch(chunk.min(cols) * k, |scratch| {
            for start in c.clone().step_by(chunk) {
                let width = chunk.min(c.end - start);
                // Columns `start..start + width` of B are rows of its (transposed) buffer.
                let rows_of_buffer = std::slice::from_raw_parts(b_matrix.add(start * k), width * k);
                transpose_into(rows_of_buffer, width, k, scratch);
                let dst = dst.add(start - c.start);
                kernel(rows, width, dst, (n as isize, 1), lhs, scratch.as_ptr(), (width as isize, 1));
            }
        });
    };
    // Two pieces per thread: a descheduled helper's piece is taken by another thread, while
    // each piece still packs its operand only once (`circ_runtime::cpu::team`).
    let band = |i: usize, len: usize, pieces: usize| len * i / pieces..len * (i + 1) / pieces;
    match crew {
        Some(crew) if split && matrices >= threads => {
            let pieces = (2 * threads).min(matrices).min(MAX_PARTS);
            crew.fork(pieces, &|i| {
                for t in band(i, matrices, pieces) {
                    block(t, 0..m, 0..n);
                }
            })
        }
        Some(crew) if split => {
            let by_rows = m * k >= k * n;
            let pieces = (2 * threads).min(if by_rows { m } else { n }).clamp(1, MAX_PARTS);
            crew.fork(pieces, &|i| {
                for t in 0..matrices {
                    if by_rows {
                        block(t, band(i, m, pieces), 0..n);
                    } else {
                        block(t, 0..m, band(i, n, pieces));
                    }
                }
            })
        }
        _ => (0..matrices).for_each(|t| block(t, 0..m, 0..n)),
    }
    Ok(())
}

thread_local! {
    /// Where [`product_on`] copies the columns of a transposed B on this thread, or writes a
    /// thin result before transposing it; kept for the thread's next product.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` on this thread's scratch, `len` (at most [`SCRATCH_FLOATS`]) floats long.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        f(&mut scratch[..len])
    })
}

/// `dst[j · rows + i] = src[i · cols + j]`: the transpose of a dense row-major `rows × cols`
/// matrix. On x86-64 in 4 × 4 blocks of SSE registers (always present there), walked in 32 × 32
/// tiles so that the rows written stay in cache: 0.1–0.2 ns per element on the shapes of
/// [`B_COPY_MAX_K`], 1.7–2.4× faster than the `transpose` crate (scalar) measured side by side.
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose of {rows} x {cols}: buffers too small");
    #[cfg(target_arch = "x86_64")]
    let (r4, c4) = (rows & !3, cols & !3);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: every block read lies in rows `i..i + 4` < `rows` and columns `j..j + 4` < `cols`
    // of `src`, every block written in rows `j..j + 4` and columns `i..i + 4` of `dst`, and both
    // hold `rows · cols` elements (asserted above); SSE is part of x86-64.
    unsafe {
        use std::arch::x86_64::*;
        const TILE: usize = 32;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        for i0 in (0..r4).step_by(TILE) {
            for j0 in (0..c4).step_by(TILE) {
                for i in (i0..(i0 + TILE).min(r4)).step_by(4) {
                    for j in (j0..(j0 + TILE).min(c4)).step_by(4) {
                        let r0 = _mm_loadu_ps(s.add(i * cols + j));
                        let r1 = _mm_loadu_ps(s.add((i + 1) * cols + j));
                        let r2 = _mm_loadu_ps(s.add((i + 2) * cols + j));
                        let r3 = _mm_loadu_ps(s.add((i + 3) * cols + j));
                        let (lo01, lo23) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3));
                        let (hi01, hi23) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3));
                        _mm_storeu_ps(d.add(j * rows + i), _mm_movelh_ps(lo01, lo23));
                        _mm_storeu_ps(d.add((j + 1) * rows + i), _mm_movehl_ps(lo23, lo01));
                        _mm_storeu_ps(d.add((j + 2) * rows + i), _mm_movelh_ps(hi01, hi23));
                        _mm_storeu_ps(d.add((j + 3) * rows + i), _mm_movehl_ps(hi23, hi01));
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let (r4, c4) = (0, 0);
    // The edges outside the 4 × 4 blocks (everything elsewhere).
    for i in 0..rows {
        for j in if i < r4 { c4 } else { 0 }..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

/// A buffer pointer the bands of one product share: each writes its own rows or columns.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: the bands read the operands and write disjoint blocks of the result.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Through a method, so that closures capture the whole (`Sync`) value.
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
            }
        }
        c.into_iter().map(|x| x as f32).collect()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (x, y) in got.iter().zip(want) {
            assert!((x - y).abs() <= 1e-5, "{got:?} vs {want:?}");
        }
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; x.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        t
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn plain_and_transposed_operands_give_the_naive_product() {
        // The last two are above `PARALLEL_FLOPS`: split between threads by rows (A the larger
        // operand), then by columns.
        for &(m, k, n) in
            &[(1, 1, 1), (7, 13, 5), (65, 3, 129), (128, 64, 10), (3, 0, 4), (256, 128, 200), (101, 128, 301)]
        {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = naive(&a, &b, m, k, n);
            let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut c = vec![f32::NAN; m * n];
                let oa = Operand { data: if ta { at.as_ptr() } else { a.as_ptr() }, shape: &[m, k], transposed: ta };
                let ob = Operand { data: if tb { bt.as_ptr() } else { b.as_ptr() }, shape: &[k, n], transposed: tb };
                unsafe { product(oa, ob, c.as_mut_ptr(), &[m, n], 2).unwrap() };
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{m}x{k}x{n} {ta} {tb}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn the_transpose_copy_matches_the_naive_one() {
        for &(rows, cols) in &[(1, 1), (3, 7), (4, 4), (33, 65), (256, 10), (10, 256), (101, 301)] {
            let src = values(rows * cols, 9);
            let mut dst = vec![f32::NAN; rows * cols];
            transpose_into(&src, rows, cols, &mut dst);
            assert_eq!(dst, transpose(&src, rows, cols), "{rows} x {cols}");
        }
    }

    #[test]
    fn a_transposed_b_copied_first_gives_the_product_of_the_plain_b_bit_for_bit() {
        // In the copy's range, on one thread and split by columns or rows over two; the last one
        // copies B in chunks of columns (k · n above `SCRATCH_FLOATS`).
        for &(m, k, n) in &[(128, 256, 256), (33, 32, 37), (300, 100, 64), (40, 512, 70), (64, 64, 5000)] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let bt = transpose(&b, k, n);
            for threads in [1, 2] {
                let oa = Operand { data: a.as_ptr(), shape: &[m, k], transposed: false };
                let (mut plain, mut copied) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                let ob = Operand { data: b.as_ptr(), shape: &[k, n], transposed: false };
                unsafe { product(oa, ob, plain.as_mut_ptr(), &[m, n], threads).unwrap() };
                let obt = Operand { data: bt.as_ptr(), shape: &[k, n], transposed: true };
                unsafe { product(oa, obt, copied.as_mut_ptr(), &[m, n], threads).unwrap() };
                assert!(plain == copied, "{m}x{k}x{n} on {threads} threads");
            }
        }
        // A batch of A's rows against one B, split by matrices over two threads.
        let (a, b) = (values(5 * 64 * 128, 3), values(128 * 96, 4));
        let bt = transpose(&b, 128, 96);
        let (mut plain, mut copied) = (vec![f32::NAN; 5 * 64 * 96], vec![f32::NAN; 5 * 64 * 96]);
        let oa = Operand { data: a.as_ptr(), shape: &[5, 64, 128], transposed: false };
        let ob = Operand { data: b.as_ptr(), shape: &[128, 96], transposed: false };
        unsafe { product(oa, ob, plain.as_mut_ptr(), &[5, 64, 96], 2).unwrap() };
        let obt = Operand { data: bt.as_ptr(), shape: &[128, 96], transposed: true };
        unsafe { product(oa, obt, copied.as_mut_ptr(), &[5, 64, 96], 2).unwrap() };
        assert!(plain == copied, "a batch");
        let want = naive(&values(40 * 512, 1), &values(512 * 70, 2), 40, 512, 70);
        let (a, bt) = (values(40 * 512, 1), transpose(&values(512 * 70, 2), 512, 70));
        let mut c = vec![f32::NAN; 40 * 70];
        let oa = Operand { data: a.as_ptr(), shape: &[40, 512], transposed: false };
        let obt = Operand { data: bt.as_ptr(), shape: &[512, 70], transposed: true };
        unsafe { product(oa, obt, c.as_mut_ptr(), &[40, 70], 2).unwrap() };
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-5 * 513.0, "{x} vs {y}");
        }
    }

    #[test]
    fn a_thin_product_through_the_column_major_scratch_is_right() {
        // A transposed A against a thin B, through the column-major scratch: every width up to
        // `THIN_N` and past it, one and two threads, rows in chunks (the last shape).
        for &(m, k, n) in &[(256, 128, 10), (300, 64, 1), (77, 33, 3), (1000, 130, 12), (64, 64, 13), (30000, 40, 10)] {
            let (a, b) = (values(m * k, 5), values(k * n, 6));
            let want = naive(&a, &b, m, k, n);
            let at = transpose(&a, m, k);
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                let oa = Operand { data: at.as_ptr(), shape: &[m, k], transposed: true };
                let ob = Operand { data: b.as_ptr(), shape: &[k, n], transposed: false };
                unsafe { product(oa, ob, c.as_mut_ptr(), &[m, n], threads).unwrap() };
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{m}x{k}x{n} on {threads}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn vectors_are_promoted_and_batches_broadcast() {
        // [2, 3, 4] · [4] → [2, 3]
        let (a, v) = (values(24, 3), values(4, 4));
        let mut c = vec![0.0; 6];
        let oa = Operand { data: a.as_ptr(), shape: &[2, 3, 4], transposed: false };
        let ov = Operand { data: v.as_ptr(), shape: &[4], transposed: false };
        unsafe { product(oa, ov, c.as_mut_ptr(), &[2, 3], 1).unwrap() };
        close(&c[..3], &naive(&a[..12], &v, 3, 4, 1));
        close(&c[3..], &naive(&a[12..], &v, 3, 4, 1));
        // [4] · [2, 4, 3] → [2, 3]
        let b = values(24, 5);
        let ob = Operand { data: b.as_ptr(), shape: &[2, 4, 3], transposed: false };
        unsafe { product(ov, ob, c.as_mut_ptr(), &[2, 3], 1).unwrap() };
        close(&c[3..], &naive(&v, &b[12..], 1, 4, 3));
        // A batch above `PARALLEL_FLOPS`, split by matrices: [5, 64, 128] · [128, 96].
        let (a, b) = (values(5 * 64 * 128, 6), values(128 * 96, 7));
        let mut c = vec![f32::NAN; 5 * 64 * 96];
        let oa = Operand { data: a.as_ptr(), shape: &[5, 64, 128], transposed: false };
        let ob = Operand { data: b.as_ptr(), shape: &[128, 96], transposed: false };
        unsafe { product(oa, ob, c.as_mut_ptr(), &[5, 64, 96], 2).unwrap() };
        for t in 0..5 {
            let want = naive(&a[t * 64 * 128..(t + 1) * 64 * 128], &b, 64, 128, 96);
            for (x, y) in c[t * 64 * 96..(t + 1) * 64 * 96].iter().zip(&want) {
                assert!((x - y).abs() <= 1e-5 * 129.0, "matrix {t}: {x} vs {y}");
            }
        }
        let a = values(24, 3);
        let oa = Operand { data: a.as_ptr(), shape: &[2, 3, 4], transposed: false };
        let bad = Operand { data: b.as_ptr(), shape: &[3, 8], transposed: false };
        assert!(unsafe { product(oa, bad, c.as_mut_ptr(), &[2, 3], 1) }.is_err());
    }
}
