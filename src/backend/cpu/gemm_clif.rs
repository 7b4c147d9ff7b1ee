//! A single-precision matrix product C = A·B whose micro-kernel is generated with Cranelift, in
//! the BLIS structure: Rust packs B into NR-column slivers (KC×NC blocks, kept in L3, a sliver in
//! L1) and A into MR-row slivers (MC×KC blocks, kept in L2), zero padded and 64-byte aligned;
//! the generated kernel computes one MR×NR tile of C over KC from two slivers, in registers.
//! Threads (rayon) each compute a band of C (rows, or columns when B is the larger operand to
//! pack twice) in one parallel region. Operands are pointers with row and column strides, so a
//! transposed A or B costs only another packing loop; C is row-major with a row stride.
//!
//! The tile: Cranelift lowers 128-bit vectors only (16 xmm registers). 4×12 is 12 `f32x4`
//! accumulators + 3 vectors of B + 1 broadcast of A = 16. x64 `fma` overwrites a multiplicand,
//! never the addend, so A is broadcast from memory afresh for every `fma` (`vbroadcastss m32`,
//! one load): each `fma` then consumes a dying value and needs no register copy. Measured with
//! `cargo bench --bench gemm -- tiles` (one thread): 4×12 and 6×8 reach 55–57 GFLOP/s, about
//! the 128-bit peak of a core; 4×8 45–50; 8×8 spills. The `gemm` crate (AVX-512) is ~3× faster
//! at every size measured: the table is at the top of `benches/gemm.rs`.

use super::BackendError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, UserFuncName, Value};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rayon::prelude::*;

/// Products with fewer multiply-adds than this run on one thread: a rayon fork-join costs
/// ~12 µs here and the second core starts with cold caches, so two threads only won from
/// ~192×192×192 on (128³ took 82 µs on one thread and 85–110 µs on two).
pub const PARALLEL_MIN_FMAS: usize = 1 << 22;

/// Packing buffers kept for the next call: one for B and one for A per thread of a 2-core
/// machine, with room for a second caller. The pool is sorted largest first, and a part takes
/// the smallest that fits.
const MAX_POOLED: usize = 6;

/// Register tile and cache blocking. [`Tile::default`] is the measured best on this machine; the
/// others exist to measure (`benches/gemm.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Rows of C per micro-kernel call (A broadcasts).
    pub mr: usize,
    /// Columns of C per micro-kernel call; a multiple of 4 (`f32x4` vectors of B).
    pub nr: usize,
    /// How many steps of k one loop iteration of the micro-kernel does; a power of two.
    pub unroll: usize,
    /// Depth of a packed block: a KC×NR sliver of B stays in L1 while the kernel walks A.
    pub kc: usize,
    /// Rows of a packed block of A (a multiple of `mr`): MC×KC stays in L2.
    pub mc: usize,
    /// Columns of a packed block of B (a multiple of `nr`): KC×NC stays in L3.
    pub nc: usize,
    /// Broadcast A from memory at every `fma` (one load each, no register copy) instead of
    /// once per row (a copy of a multiplicand for most `fma`s; see [`build_kernel`]).
    pub reload_a: bool,
}

impl Default for Tile {
    fn default() -> Tile {
        Tile { mr: 4, nr: 12, unroll: 4, kc: 256, mc: 48, nc: 4092, reload_a: true }
    }
}

/// The micro-kernel: `c[i*c_rs_bytes + j] (+)= Σ_p a[p*MR + i] · b[p*NR + j]` for the tile, over
/// `kc` steps; adds to C when `add` is non-zero, overwrites it otherwise (C is then not read).
type Kernel = unsafe extern "C" fn(kc: usize, a: *const f32, b: *const f32, c: *mut f32, c_rs_bytes: isize, add: u64);

/// The compiled micro-kernel and the driver around it. The kernel's code lives as long as this.
pub struct GeneratedGemm {
    module: Option<JITModule>,
    kernel: Kernel,
    tile: Tile,
    clif: String,
    asm: String,
    /// Packing buffers kept between calls.
    scratch: std::sync::Mutex<Vec<AlignedBuf>>,
}

// SAFETY: after `new` the JIT module is only touched by `Drop`; the kernel is plain machine code
// that reads and writes only what its arguments point to.
unsafe impl Send for GeneratedGemm {}
unsafe impl Sync for GeneratedGemm {}

impl Drop for GeneratedGemm {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the only pointer into the module's memory is `kernel`, dropped with `self`.
            unsafe { m.free_memory() }
        }
    }
}

fn codegen(e: impl std::fmt::Debug) -> BackendError {
    BackendError::Codegen(format!("{e:?}"))
}

impl GeneratedGemm {
    /// Compiles the micro-kernel for [`Tile::default`].
    pub fn new() -> Result<GeneratedGemm, BackendError> {
        GeneratedGemm::with_tile(Tile::default())
    }

    /// Compiles the micro-kernel for another tile (to measure; the default is the fastest here).
    pub fn with_tile(tile: Tile) -> Result<GeneratedGemm, BackendError> {
        let t = tile;
        if t.mr == 0 || t.nr == 0 || !t.nr.is_multiple_of(4) || !t.unroll.is_power_of_two() || t.kc == 0 {
            return Err(BackendError::Unsupported(format!("micro-kernel tile {t:?}")));
        }
        if t.mc == 0 || !t.mc.is_multiple_of(t.mr) || t.nc == 0 || !t.nc.is_multiple_of(t.nr) {
            return Err(BackendError::Unsupported(format!("cache blocks of {t:?}")));
        }
        // No e-graph pass: it would merge the repeated broadcasts of A and reorder the unrolled
        // `fma`s accumulator by accumulator, which spills. The CLIF is already as wanted.
        let builder = JITBuilder::with_flags(&[("opt_level", "none")], default_libcall_names()).map_err(codegen)?;
        let mut module = JITModule::new(builder);
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        for ty in [ptr, ptr, ptr, ptr, ptr, types::I64] {
            sig.params.push(AbiParam::new(ty));
        }
        let id = module.declare_function("circ_sgemm_kernel", Linkage::Local, &sig).map_err(codegen)?;
        let mut ctx: Context = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        build_kernel(FunctionBuilder::new(&mut ctx.func, &mut fctx), module.target_config(), &t);
        let clif = format!(
            "; sgemm micro-kernel: {}x{} tile of C += A sliver · B sliver, k unrolled {}x\n{}",
            t.mr,
            t.nr,
            t.unroll,
            ctx.func.display()
        );
        ctx.set_disasm(true);
        module.define_function(id, &mut ctx).map_err(|e| match e {
            cranelift_module::ModuleError::Compilation(c) => {
                BackendError::Codegen(cranelift_codegen::print_errors::pretty_error(&ctx.func, c))
            }
            e => codegen(e),
        })?;
        let asm = ctx.compiled_code().and_then(|c| c.vcode.clone()).unwrap_or_default();
        module.finalize_definitions().map_err(codegen)?;
        // SAFETY: defined with `sig`: five pointer-sized integers and an i64 in the host's C
        // convention, which is `Kernel`.
        let kernel = unsafe { std::mem::transmute::<*const u8, Kernel>(module.get_finalized_function(id)) };
        Ok(GeneratedGemm { module: Some(module), kernel, tile: t, clif, asm, scratch: Default::default() })
    }

    /// The tile and blocking this product was compiled for.
    pub fn tile(&self) -> Tile {
        self.tile
    }

    /// The micro-kernel's CLIF as generated (before Cranelift's optimizations).
    pub fn clif_text(&self) -> String {
        self.clif.clone()
    }

    /// The micro-kernel's machine code after register allocation (spills show up here).
    pub fn asm_text(&self) -> &str {
        &self.asm
    }

    /// C = A·B (or C += A·B when `accumulate`), A m×k, B k×n, on up to `threads` threads (of
    /// rayon's global pool; 1 runs on the calling thread only). Element (i, p) of A is
    /// `a[i*a_rs + p*a_cs]`, likewise B; element (i, j) of C is `c[i*c_rs + j]`. With k = 0, C
    /// becomes 0 (or stays as it is when accumulating). Without `accumulate` C is never read.
    ///
    /// # Safety
    /// Every element the strides address for these sizes is valid to read (A, B) or to read and
    /// write (C); the rows of C do not overlap one another nor A or B.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run(
        &self,
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        a_rs: isize,
        a_cs: isize,
        b: *const f32,
        b_rs: isize,
        b_cs: isize,
        c: *mut f32,
        c_rs: isize,
        accumulate: bool,
        threads: usize,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            if !accumulate {
                for i in 0..m {
                    std::slice::from_raw_parts_mut(c.offset(i as isize * c_rs), n).fill(0.0);
                }
            }
            return;
        }
        let t = self.tile;
        let threads = if m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_FMAS { 1 } else { threads.max(1) };
        let p = Product { a: Raw(a), a_rs, a_cs, b: Raw(b), b_rs, b_cs, c: Raw(c), c_rs, k, accumulate };
        let (row_tiles, col_tiles) = (m.div_ceil(t.mr), n.div_ceil(t.nr));
        if threads == 1 {
            return self.part(&p, (0, m), (0, n));
        }
        // Each thread computes a band of C on its own (one parallel region: waking threads is
        // what small products pay for). Bands of rows pack all of B on every thread, bands of
        // columns all of A: split where the repeated packing is smaller.
        let by_rows = (k * n <= m * k || col_tiles < threads) && row_tiles > 1;
        let bands: Vec<((usize, usize), (usize, usize))> = if by_rows {
            split(row_tiles, threads).map(|(r0, r1)| ((r0 * t.mr, (r1 * t.mr).min(m)), (0, n))).collect()
        } else {
            split(col_tiles, threads).map(|(c0, c1)| ((0, m), (c0 * t.nr, (c1 * t.nr).min(n)))).collect()
        };
        bands.par_iter().for_each(|&(rows, cols)| {
            // SAFETY: the caller's contract; bands are disjoint parts of C.
            unsafe { self.part(&p, rows, cols) }
        });
    }

    /// C[rows, cols] on the calling thread, BLIS loop order: blocks of NC columns, KC steps of k
    /// (B packed, kept in L3, a sliver in L1), MC rows (A packed, kept in L2), then every tile.
    unsafe fn part(&self, p: &Product, (m0, m1): (usize, usize), (n0, n1): (usize, usize)) {
        let t = self.tile;
        let b_len = t.kc.min(p.k) * (n1 - n0).min(t.nc).div_ceil(t.nr) * t.nr;
        let (mut bpack, mut apack) = self.buffers(b_len, t.kc * t.mc);
        let mut tile_buf = vec![0f32; t.mr * t.nr];
        for jc in (n0..n1).step_by(t.nc) {
            let nc = t.nc.min(n1 - jc);
            for pc in (0..p.k).step_by(t.kc) {
                let kc = t.kc.min(p.k - pc);
                let add = p.accumulate || pc > 0;
                let bs = bpack.as_mut_slice();
                for (s, d) in bs[..nc.div_ceil(t.nr) * kc * t.nr].chunks_mut(kc * t.nr).enumerate() {
                    let j0 = jc + s * t.nr;
                    pack(d, p.b, pc, kc, p.b_rs, j0, t.nr.min(n1 - j0), p.b_cs, t.nr);
                }
                for ic in (m0..m1).step_by(t.mc) {
                    let mc = t.mc.min(m1 - ic);
                    let a_slivers = mc.div_ceil(t.mr);
                    let ap = apack.as_mut_slice();
                    for (s, d) in ap[..a_slivers * kc * t.mr].chunks_mut(kc * t.mr).enumerate() {
                        let i0 = ic + s * t.mr;
                        pack(d, p.a, pc, kc, p.a_cs, i0, t.mr.min(m1 - i0), p.a_rs, t.mr);
                    }
                    for j0 in (jc..jc + nc).step_by(t.nr) {
                        let cols = t.nr.min(n1 - j0);
                        let bsl = bs.as_ptr().add((j0 - jc) * kc);
                        for i0 in (ic..ic + mc).step_by(t.mr) {
                            let rows = t.mr.min(m1 - i0);
                            let asl = ap.as_ptr().add((i0 - ic) * kc);
                            let cp = p.c.0.offset(i0 as isize * p.c_rs + j0 as isize);
                            if rows == t.mr && cols == t.nr {
                                (self.kernel)(kc, asl, bsl, cp, p.c_rs * 4, add as u64);
                                continue;
                            }
                            // Edge tile: computed aside in full, then its valid part kept.
                            (self.kernel)(kc, asl, bsl, tile_buf.as_mut_ptr(), (t.nr * 4) as isize, 0);
                            for i in 0..rows {
                                let row = std::slice::from_raw_parts_mut(cp.offset(i as isize * p.c_rs), cols);
                                let src = &tile_buf[i * t.nr..i * t.nr + cols];
                                if add {
                                    row.iter_mut().zip(src).for_each(|(c, s)| *c += s);
                                } else {
                                    row.copy_from_slice(src);
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        pool.push(bpack);
        pool.push(apack);
        // Keep the largest few: enough for every thread of a call.
        pool.sort_by_key(|b| std::cmp::Reverse(b.capacity()));
        pool.truncate(MAX_POOLED);
    }

    /// Packing buffers of these lengths, from the pool when it has them: fresh pages cost more
    /// than a small product does.
    fn buffers(&self, b_len: usize, a_len: usize) -> (AlignedBuf, AlignedBuf) {
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let mut take = |len: usize| match pool.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => pool.remove(i).with_len(len),
            None => AlignedBuf::new(len),
        };
        let b = take(b_len);
        (b, take(a_len))
    }

    /// Safe form of [`GeneratedGemm::run`] on slices, with non-negative strides. Fails if a
    /// slice is too short for its sizes and strides, or if the rows of C overlap.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        (a_rs, a_cs): (usize, usize),
        b: &[f32],
        (b_rs, b_cs): (usize, usize),
        c: &mut [f32],
        c_rs: usize,
        accumulate: bool,
        threads: usize,
    ) -> Result<(), BackendError> {
        let need = |rows: usize, cols: usize, rs: usize, cs: usize| -> Option<usize> {
            if rows == 0 || cols == 0 {
                return Some(0);
            }
            (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
        };
        let check = |name: &str, len: usize, want: Option<usize>| match want {
            Some(w) if w <= len => Ok(()),
            _ => Err(BackendError::Run(format!("{name} has {len} values, its sizes and strides need {want:?}"))),
        };
        let kk = if m == 0 || n == 0 { 0 } else { k };
        check("A", a.len(), need(m, kk, a_rs, a_cs))?;
        check("B", b.len(), need(kk, n, b_rs, b_cs))?;
        check("C", c.len(), need(m, n, c_rs, 1))?;
        if m > 1 && c_rs < n {
            return Err(BackendError::Run(format!("rows of C overlap: row stride {c_rs} < {n} columns")));
        }
        if [a_rs, a_cs, b_rs, b_cs, c_rs].iter().any(|&s| s > isize::MAX as usize) {
            return Err(BackendError::Run("stride too large".into()));
        }
        // SAFETY: every addressed element is inside its slice (checked above); C is borrowed
        // mutably, so it overlaps neither A nor B, and its rows do not overlap each other.
        unsafe {
            self.run(
                m,
                k,
                n,
                a.as_ptr(),
                a_rs as isize,
                a_cs as isize,
                b.as_ptr(),
                b_rs as isize,
                b_cs as isize,
                c.as_mut_ptr(),
                c_rs as isize,
                accumulate,
                threads,
            )
        };
        Ok(())
    }
}

/// A pointer that threads may share: each writes only its own part.
#[derive(Clone, Copy)]
struct Raw<T>(T);
unsafe impl<T> Send for Raw<T> {}
unsafe impl<T> Sync for Raw<T> {}

/// The operands of one product (see [`GeneratedGemm::run`]).
struct Product {
    a: Raw<*const f32>,
    a_rs: isize,
    a_cs: isize,
    b: Raw<*const f32>,
    b_rs: isize,
    b_cs: isize,
    c: Raw<*mut f32>,
    c_rs: isize,
    k: usize,
    accumulate: bool,
}

/// `0..len` cut into at most `parts` contiguous, non-empty ranges of nearly equal length.
fn split(len: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
    let parts = parts.min(len).max(1);
    (0..parts).map(move |p| (len * p / parts, len * (p + 1) / parts))
}

/// Packs one sliver: `dst[p*w + q] = src[(p0+p)*p_stride + (q0+q)*q_stride]` for p < kc and
/// q < `valid`, 0 for `valid <= q < w`. A sliver of A has q = row, of B q = column.
#[allow(clippy::too_many_arguments)]
unsafe fn pack(
    dst: &mut [f32],
    src: Raw<*const f32>,
    p0: usize,
    kc: usize,
    p_stride: isize,
    q0: usize,
    valid: usize,
    q_stride: isize,
    w: usize,
) {
    let base = src.0.offset(p0 as isize * p_stride + q0 as isize * q_stride);
    if q_stride == 1 && valid == w {
        // Contiguous along the sliver's width (B row-major, A column-major): copy rows.
        for (p, d) in dst.chunks_exact_mut(w).enumerate() {
            d.copy_from_slice(std::slice::from_raw_parts(base.offset(p as isize * p_stride), w));
        }
    } else if p_stride == 1 {
        // Contiguous along k (A row-major, B column-major): read each line once, write strided.
        for q in 0..w {
            if q < valid {
                let line = std::slice::from_raw_parts(base.offset(q as isize * q_stride), kc);
                for (p, &x) in line.iter().enumerate() {
                    *dst.get_unchecked_mut(p * w + q) = x;
                }
            } else {
                for p in 0..kc {
                    *dst.get_unchecked_mut(p * w + q) = 0.0;
                }
            }
        }
    } else {
        for (p, d) in dst.chunks_exact_mut(w).enumerate() {
            for (q, x) in d.iter_mut().enumerate() {
                *x = if q < valid { *base.offset(p as isize * p_stride + q as isize * q_stride) } else { 0.0 };
            }
        }
    }
}

/// A 64-byte aligned buffer of f32 (packed slivers are loaded with aligned vector loads).
struct AlignedBuf {
    data: Vec<Line>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        AlignedBuf { data: vec![Line([0.0; 16]); len.div_ceil(16)], len }
    }

    fn capacity(&self) -> usize {
        self.data.len() * 16
    }

    /// The same memory seen as `len` floats (at most its capacity).
    fn with_len(mut self, len: usize) -> AlignedBuf {
        debug_assert!(len <= self.capacity());
        self.len = len;
        self
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: `Line` is 16 f32 with no padding, and `len` ≤ 16 · lines.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_mut_ptr() as *mut f32, self.len) }
    }
}

/// Writes the micro-kernel (signature: see [`Kernel`]). Accumulators are variables; the frontend
/// turns them into block parameters of the k loop. On x64 an `fma` overwrites its first operand,
/// so the multiplicand that dies there goes first: with `reload_a` always the fresh broadcast,
/// otherwise the broadcast at its row's last vector of B, or B at the last row. Any other
/// order costs a register copy per `fma`.
fn build_kernel(mut b: FunctionBuilder, config: TargetFrontendConfig, t: &Tile) {
    let ptr = config.pointer_type();
    let vx = t.nr / 4;
    let f32x4 = types::F32X4;
    let packed = MemFlagsData::trusted().with_readonly().with_can_move();
    let c_flags = MemFlagsData::new().with_notrap();

    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let (kc, a0, b0, c0, c_rs, add) = (p[0], p[1], p[2], p[3], p[4], p[5]);

    let acc: Vec<Variable> = (0..t.mr * vx).map(|_| b.declare_var(f32x4)).collect();
    let (va, vb, vn) = (b.declare_var(ptr), b.declare_var(ptr), b.declare_var(ptr));
    let zero_s = b.ins().f32const(0.0);
    let zero = b.ins().splat(f32x4, zero_s);
    for &v in &acc {
        b.def_var(v, zero);
    }
    b.def_var(va, a0);
    b.def_var(vb, b0);
    let shift = t.unroll.trailing_zeros() as i64;
    let main = b.ins().ushr_imm_u(kc, shift);
    b.def_var(vn, main);

    // One step of k at offset `s` (in steps) from the current pointers.
    let step = |b: &mut FunctionBuilder, s: usize| {
        let (pa, pb) = (b.use_var(va), b.use_var(vb));
        let bv: Vec<Value> =
            (0..vx).map(|j| b.ins().load(f32x4, packed, pb, ((s * t.nr + 4 * j) * 4) as i32)).collect();
        let bcast = |b: &mut FunctionBuilder, i: usize| {
            let x = b.ins().load(types::F32, packed, pa, ((s * t.mr + i) * 4) as i32);
            b.ins().splat(f32x4, x)
        };
        // Odd steps go backwards: each `fma` result takes the register of the value that died
        // there, which shifts the tile by one register per `fma`; the reverse order shifts it
        // back, so two steps leave every accumulator where it was (in order, the register
        // allocator spilled 6×8 and 4×12 unrolled).
        let alt = s % 2 == 1;
        let order = |n: usize| -> Vec<usize> {
            if alt {
                (0..n).rev().collect()
            } else {
                (0..n).collect()
            }
        };
        let (rows, cols) = (order(t.mr), order(vx));
        for (ri, &i) in rows.iter().enumerate() {
            let row = if t.reload_a { None } else { Some(bcast(b, i)) };
            for (ci, &j) in cols.iter().enumerate() {
                let v = acc[i * vx + j];
                let cur = b.use_var(v);
                let av = match row {
                    Some(r) => r,
                    None => bcast(b, i),
                };
                // The multiplicand that dies here goes first (it is overwritten).
                let a_dies = t.reload_a || ci + 1 == vx;
                let (x, y) = if a_dies || ri + 1 != t.mr { (av, bv[j]) } else { (bv[j], av) };
                let r = b.ins().fma(x, y, cur);
                b.def_var(v, r);
            }
        }
    };
    let advance = |b: &mut FunctionBuilder, steps: usize| {
        let (pa, pb) = (b.use_var(va), b.use_var(vb));
        let na = b.ins().iadd_imm_s(pa, (steps * t.mr * 4) as i64);
        let nb = b.ins().iadd_imm_s(pb, (steps * t.nr * 4) as i64);
        b.def_var(va, na);
        b.def_var(vb, nb);
        let n = b.use_var(vn);
        let n1 = b.ins().iadd_imm_s(n, -1);
        b.def_var(vn, n1);
    };

    // Main loop: `unroll` steps per iteration while kc / unroll iterations remain.
    let (head, body, tail_init, tail_head, tail_body, epi, load_c, store) = (
        b.create_block(),
        b.create_block(),
        b.create_block(),
        b.create_block(),
        b.create_block(),
        b.create_block(),
        b.create_block(),
        b.create_block(),
    );
    b.ins().jump(head, &[]);
    b.switch_to_block(head);
    let n = b.use_var(vn);
    b.ins().brif(n, body, &[], tail_init, &[]);
    b.switch_to_block(body);
    for s in 0..t.unroll {
        step(&mut b, s);
    }
    advance(&mut b, t.unroll);
    b.ins().jump(head, &[]);

    // Remainder: kc mod unroll single steps.
    b.switch_to_block(tail_init);
    let rem = b.ins().band_imm_u(kc, t.unroll as i64 - 1);
    b.def_var(vn, rem);
    b.ins().jump(tail_head, &[]);
    b.switch_to_block(tail_head);
    let n = b.use_var(vn);
    b.ins().brif(n, tail_body, &[], epi, &[]);
    b.switch_to_block(tail_body);
    step(&mut b, 0);
    advance(&mut b, 1);
    b.ins().jump(tail_head, &[]);

    // Epilogue: add the old C when asked, then store the tile row by row.
    b.switch_to_block(epi);
    let is_add = b.ins().icmp_imm_u(IntCC::NotEqual, add, 0);
    b.ins().brif(is_add, load_c, &[], store, &[]);
    b.switch_to_block(load_c);
    let mut row = c0;
    for i in 0..t.mr {
        for j in 0..vx {
            let old = b.ins().load(f32x4, c_flags, row, (16 * j) as i32);
            let cur = b.use_var(acc[i * vx + j]);
            let s = b.ins().fadd(cur, old);
            b.def_var(acc[i * vx + j], s);
        }
        row = b.ins().iadd(row, c_rs);
    }
    b.ins().jump(store, &[]);
    b.switch_to_block(store);
    let mut row = c0;
    for i in 0..t.mr {
        for j in 0..vx {
            let v = b.use_var(acc[i * vx + j]);
            b.ins().store(c_flags, v, row, (16 * j) as i32);
        }
        if i + 1 < t.mr {
            row = b.ins().iadd(row, c_rs);
        }
    }
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(config);
}
