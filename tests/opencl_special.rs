//! The OpenCL kernels of `backend/opencl/special.rs` (`logsumexp`, `one_hot`, `transpose`,
//! `slice`, `embed`, `concat`, `kmax`, `kmax_mask`) against the interpreter's per-op kernels
//! (`interp::ops::apply`, in `f32`): each kernel rendered from a small graph, built and run alone
//! on the first OpenCL device, on odd shapes (empty axes, axes of size 1, symbolic sizes bound to
//! 0, 1 and odd numbers) and special values (NaN, ±∞, −0, ties).
//!
//! Every buffer lies in one arena between guard bands of a NaN pattern, and the result starts as
//! that pattern: a test fails if a kernel writes outside its result or leaves an element
//! unwritten.
//!
//! Tolerance: copies, `one_hot` and `kmax` must give the interpreter's bits. `logsumexp` must
//! agree on every non-finite result (−∞ for an all −∞ row or an empty axis, +∞ where an entry is
//! +∞, NaN where one is NaN) and on a finite one `r` within `2⁻²⁴·(8·(|r| + |m|) + 16 + 2·n)`,
//! `m` the row's maximum and `n` its length: OpenCL's `exp` and `log` are within 3 ulp
//! (OpenCL 1.2 §7.4), so each term of `s = Σ exp(x − m)` is within 3 ulp and `s` (a sum of
//! positive terms) within 3 ulp of itself, which `log` turns into 6·2⁻²⁴ absolute; `log` adds
//! 3 ulp of |log s| ≤ |r| + |m|; `m + log s` rounds once at |r|. The long-row kernel adds the
//! terms in a tree instead of the interpreter's sequence: the two sums of `n` positive terms are
//! each within `(n − 1)·2⁻²⁴` of the exact one, relatively, hence the `2·n`.
//!
//! Without an OpenCL platform the tests print why and pass, unless `CI=true`, where they fail.

use circ::backend::opencl::source::PRELUDE;
use circ::backend::opencl::{special, Rendered};
use circ::check::checked::{DataSource, Slice};
use circ::check::types::{Dim, Elem, SymId};
use circ::interp::{ops, Tensor};
use circ::ir::graph::{DataInfo, Output};
use circ::ir::op::ReduceOp;
use circ::ir::{Graph, NodeId, Op};
use circ::kernel::partition;

// ---------------------------------------------------------------------------------------------
// The device.

mod device {
    use circ_runtime::opencl::{Arg, Driver, Executable};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    /// The runtime's driver on its default device (the first GPU, else the first device), shared
    /// by every test and used by one kernel run at a time, with the programs built so far by
    /// source: cases differing only in values or run-time sizes build once.
    pub struct Dev {
        inner: Mutex<(Driver, HashMap<String, Executable>)>,
    }

    static DEV: OnceLock<Result<Dev, String>> = OnceLock::new();

    /// The device, or why there is none.
    pub fn open() -> Result<&'static Dev, String> {
        DEV.get_or_init(|| {
            let driver = Driver::open(None).map_err(|e| e.to_string())?;
            Ok(Dev { inner: Mutex::new((driver, HashMap::new())) })
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    impl Dev {
        /// Builds `source`, writes `arena`, runs kernel `name` with `offsets` then `extents` after
        /// the arena, on `global` work-items in groups of `local`; the arena afterwards.
        #[allow(clippy::too_many_arguments)]
        pub fn run(
            &self,
            source: &str,
            name: &str,
            arena: &[f32],
            offsets: &[u64],
            extents: &[i32],
            global: usize,
            local: usize,
        ) -> Vec<f32> {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let (driver, programs) = &mut *guard;
            if !programs.contains_key(source) {
                let exe = driver.build(source, super::BUILD, &[name]).unwrap_or_else(|e| panic!("{e}\n{source}"));
                programs.insert(source.to_string(), exe);
            }
            let exe = &programs[source];
            let mut buf = driver.arena(arena.len()).unwrap();
            driver.write(&mut buf, 0, arena).unwrap();
            let args: Vec<Arg> =
                offsets.iter().map(|o| Arg::U64(*o)).chain(extents.iter().map(|e| Arg::I32(*e))).collect();
            driver.launch(exe, 0, &buf, &args, &[global], &[local]).unwrap();
            let mut out = vec![0.0f32; arena.len()];
            driver.read(&buf, 0, &mut out).unwrap();
            driver.finish().unwrap();
            out
        }
    }
}

const BUILD: &str = circ::backend::opencl::source::BUILD_OPTIONS;

/// The device, or `None` (with the reason printed) where there is none and `CI` is not `true`.
fn device() -> Option<&'static device::Dev> {
    match device::open() {
        Ok(d) => Some(d),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true and {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| (self.unit() * 2.0 - 1.0) * scale).collect()
    }
    /// Values with special ones sprinkled in (one in `every`).
    fn special(&mut self, n: usize, every: u64) -> Vec<f32> {
        let pick = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1.0];
        (0..n)
            .map(|_| {
                if self.next().is_multiple_of(every) {
                    pick[(self.next() % pick.len() as u64) as usize]
                } else {
                    (self.unit() * 2.0 - 1.0) * 4.0
                }
            })
            .collect()
    }
}

const N: Dim = Dim::Sym(SymId(0));

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

fn concrete(shape: &[Dim], n: usize) -> Vec<usize> {
    shape.iter().map(|d| if let Dim::Known(v) = d { *v as usize } else { n }).collect()
}

/// The NaN pattern of guard bands and unwritten results.
const POISON: u32 = 0x7fc0_dead;

// ---------------------------------------------------------------------------------------------
// Running one op.

/// A graph of data inputs of shapes `inputs` (integer labels for `one_hot`) and `op` of all of
/// them (`target`: an embed's shape), the rendered kernel computing it, and the op's node.
fn rendered(op: &Op, inputs: &[Vec<Dim>], target: Option<Vec<Dim>>) -> (Graph, Option<Rendered>, NodeId) {
    let mut g = Graph::default();
    g.syms = vec!["N".into()];
    let elem = if matches!(op, Op::OneHot { .. }) { Elem::Int } else { Elem::Float };
    let xs: Vec<NodeId> = inputs
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            g.data.push(DataInfo {
                name: format!("x{i}"),
                elem,
                shape: shape.clone(),
                source: DataSource::Columns(vec![]),
            });
            g.push(Op::Data(i), &[], None, None)
        })
        .collect();
    let y = g.push(op.clone(), &xs, target, None);
    // The verifier wants a scalar loss first.
    let loss = g.constant(0.0, None);
    g.outputs.push(Output { name: "loss".into(), node: loss });
    g.outputs.push(Output { name: "y".into(), node: y });
    circ::ir::verify::verify(&g).unwrap();
    let p = partition(&g);
    let kernel = p.kernels.iter().find(|k| k.nodes.contains(&y)).unwrap();
    let r = special::render(&g, kernel, "k0");
    (g, r, y)
}

/// Runs `op` on `values` (one per operand, with N bound to `n`) through the rendered kernel and
/// through the interpreter: (kernel, interpreter) results. `None` where no device is found.
fn both(
    dev: &'static device::Dev,
    op: &Op,
    shapes: &[Vec<Dim>],
    target: Option<Vec<Dim>>,
    n: usize,
    values: &[Vec<f32>],
) -> (Vec<f32>, Tensor<f32>) {
    let (g, r, y) = rendered(op, shapes, target);
    let r = r.unwrap_or_else(|| panic!("{} of {shapes:?} is not rendered", op.name()));
    let tensors: Vec<Tensor<f32>> = shapes
        .iter()
        .zip(values)
        .map(|(s, v)| {
            let shape = concrete(s, n);
            assert_eq!(shape.iter().product::<usize>(), v.len(), "test values of {s:?}");
            Tensor { shape, data: v.clone() }
        })
        .collect();
    let refs: Vec<&Tensor<f32>> = tensors.iter().collect();
    let out_shape = concrete(&g.node(y).shape, n);
    let want = ops::apply(op, &refs, &out_shape).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    assert_eq!(want.shape, out_shape);
    // The kernel must fit these sizes (the executor's check).
    let kernel = partition(&g).kernels.into_iter().find(|k| k.nodes.contains(&y)).unwrap();
    let size = |d: Dim| if let Dim::Known(v) = d { v } else { n as u64 };
    assert!(special::fits(&g, &kernel, &size));
    // The arena: a guard band, then each buffer and a guard band after it.
    const GUARD: usize = 37;
    let mut arena = vec![f32::from_bits(POISON); GUARD];
    let mut offsets = Vec::new();
    let operands = g.operands(y);
    let mut out_at = 0;
    for b in &r.buffers {
        offsets.push(arena.len() as u64);
        if *b == y {
            out_at = arena.len();
            arena.extend(std::iter::repeat_n(f32::from_bits(POISON), want.data.len()));
        } else {
            let i = operands.iter().position(|x| x == b).expect("a buffer is an operand or the result");
            arena.extend_from_slice(&values[i]);
        }
        arena.extend(std::iter::repeat_n(f32::from_bits(POISON), GUARD));
    }
    let extents: Vec<i32> = r.extents.iter().map(|e| e.0.iter().map(|d| size(*d)).product::<u64>() as i32).collect();
    assert_eq!(r.launch.global.len(), 1);
    let gs = &r.launch.global[0];
    let local = r.launch.local[0];
    let items = gs.extent.0.iter().map(|d| size(*d)).product::<u64>().div_ceil(gs.div) * gs.mul;
    let global = (items as usize).div_ceil(local) * local;
    let source = format!("{PRELUDE}\n{}", r.source);
    if std::env::var("SHOW").is_ok() {
        eprintln!("{source}\narena {} offsets {offsets:?} extents {extents:?} global {global}", arena.len());
    }
    let after = dev.run(&source, &r.name, &arena, &offsets, &extents, global, local);
    // Nothing but the result may change.
    let result = out_at..out_at + want.data.len();
    for (i, (a, b)) in after.iter().zip(&arena).enumerate() {
        if !result.contains(&i) {
            assert_eq!(a.to_bits(), b.to_bits(), "{}: element {i} of the arena outside the result changed", op.name());
        }
    }
    (after[result].to_vec(), want)
}

fn same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(a.to_bits() == b.to_bits(), "{what}: element {i}: kernel {a} ({:#x}), interpreter {b}", a.to_bits());
    }
}

/// Runs a copy, one-hot or selection and checks the interpreter's bits.
fn exact(
    dev: &'static device::Dev,
    op: &Op,
    shapes: &[Vec<Dim>],
    target: Option<Vec<Dim>>,
    n: usize,
    values: &[Vec<f32>],
) {
    let (got, want) = both(dev, op, shapes, target, n, values);
    same_bits(&format!("{} of {shapes:?}, N = {n}", op.name()), &got, &want.data);
}

// ---------------------------------------------------------------------------------------------
// logsumexp

/// Checks a logsumexp result against the interpreter's with the tolerance of the header.
fn check_logsumexp(what: &str, axis: usize, x: &Tensor<f32>, got: &[f32], want: &[f32]) {
    let max = ops::reduce(ReduceOp::Max, &[axis], false, x).unwrap();
    let n = x.shape[axis];
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let m = max.data[i];
        let ok = if b.is_finite() {
            let tol = (8.0 * (b.abs() + m.abs()) + 16.0 + 2.0 * n as f32) * f32::EPSILON / 2.0;
            a.is_finite() && (a - b).abs() <= tol
        } else {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        };
        assert!(
            ok,
            "{what}: element {i}: kernel {a}, interpreter {b} (max {m}, n {n}, {:.2} units)",
            (a - b).abs() / (f32::EPSILON / 2.0)
        );
    }
}

fn logsumexp_case(dev: &'static device::Dev, rng: &mut Rng, shape: Vec<Dim>, axis: usize, n: usize, every: u64) {
    for keepdims in [false, true] {
        let op = Op::LogSumExp { axis, keepdims };
        let count = concrete(&shape, n).iter().product();
        let values = if every == 0 { rng.values(count, 30.0) } else { rng.special(count, every) };
        let (got, want) = both(dev, &op, std::slice::from_ref(&shape), None, n, std::slice::from_ref(&values));
        let x = Tensor { shape: concrete(&shape, n), data: values };
        check_logsumexp(&format!("{} of {shape:?}, N = {n}", op.name()), axis, &x, &got, &want.data);
    }
}

#[test]
fn logsumexp_on_odd_shapes_and_special_values() {
    let Some(dev) = device() else { return };
    let mut rng = Rng(1);
    // (compiled shape, axis, run-time N values)
    let cases: Vec<(Vec<Dim>, usize, Vec<usize>)> = vec![
        (vec![k(7), k(13)], 1, vec![0]),
        (vec![k(7), k(13)], 0, vec![0]),
        (vec![k(3), k(9), k(6)], 1, vec![0]),
        (vec![k(3), k(9), k(6)], 2, vec![0]),
        (vec![k(1), k(1)], 0, vec![0]),
        (vec![k(5)], 0, vec![0]),
        (vec![N, k(10)], 1, vec![0, 1, 5, 67]),
        (vec![N, k(10)], 0, vec![0, 1, 5, 67]),
        (vec![k(4), N, k(3)], 1, vec![0, 1, 9]),
        // Long rows: one work-group per output.
        (vec![k(3), N], 1, vec![0, 1, 127, 128, 129, 1000]),
        (vec![k(2), k(300)], 1, vec![0]),
        (vec![k(2), k(1), k(700)], 2, vec![0]),
        (vec![N], 0, vec![0, 3, 513]),
        // A long strided axis: one work-item per output.
        (vec![k(300), k(3)], 0, vec![0]),
    ];
    for (shape, axis, ns) in cases {
        for n in ns {
            for every in [0, 3, 17] {
                logsumexp_case(dev, &mut rng, shape.clone(), axis, n, every);
            }
        }
    }
    // Rows of nothing but −∞, of +∞ beside −∞, of NaN, of one large value.
    let inf = f32::INFINITY;
    let rows: Vec<Vec<f32>> = vec![
        vec![-inf; 5],
        vec![-inf, inf, 0.0, -inf, 1.0],
        vec![1.0, f32::NAN, inf, -inf, 2.0],
        vec![3e38, -3e38, 1.0, 0.0, 3e38],
        vec![-1e30, -1e30, -1e30, -1e30, -1e30],
    ];
    for len in [5usize, 300] {
        let data: Vec<f32> =
            rows.iter().flat_map(|r| r.iter().cycle().take(len).copied().collect::<Vec<_>>()).collect();
        let shape = vec![k(rows.len() as u64), k(len as u64)];
        let op = Op::LogSumExp { axis: 1, keepdims: false };
        let (got, want) = both(dev, &op, std::slice::from_ref(&shape), None, 0, std::slice::from_ref(&data));
        let x = Tensor { shape: concrete(&shape, 0), data };
        check_logsumexp(&format!("special rows of {len}"), 1, &x, &got, &want.data);
    }
}

// ---------------------------------------------------------------------------------------------
// one_hot

#[test]
fn one_hot_of_every_kind_of_label() {
    let Some(dev) = device() else { return };
    let labels = [
        0.0,
        9.0,
        3.0,
        -1.0,
        10.0,
        1.5,
        f32::NAN,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e9,
        -0.5,
        0.999_999_94,
        16_777_216.0,
        4.0,
    ];
    for classes in [10u64, 1, 3] {
        for n in [0usize, 1, 7, 15] {
            let values: Vec<f32> = labels.iter().cycle().take(n).copied().collect();
            exact(dev, &Op::OneHot { classes }, &[vec![N]], None, n, &[values]);
        }
        let values: Vec<f32> = labels.iter().cycle().take(6).copied().collect();
        exact(dev, &Op::OneHot { classes }, &[vec![k(2), k(3)]], None, 0, &[values]);
        exact(dev, &Op::OneHot { classes }, &[vec![]], None, 0, &[vec![2.0]]);
    }
}

// ---------------------------------------------------------------------------------------------
// Copies.

/// Every permutation of `0..r`.
fn permutations(r: usize) -> Vec<Vec<usize>> {
    if r == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(r - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, r - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn transposes_of_every_permutation() {
    let Some(dev) = device() else { return };
    let mut rng = Rng(2);
    let shapes: Vec<(Vec<Dim>, Vec<usize>)> = vec![
        (vec![k(2), k(3), k(4)], vec![0]),
        (vec![N, k(5)], vec![0, 1, 7]),
        (vec![k(1), k(4), k(1), k(3)], vec![0]),
        (vec![k(3), N, k(1), k(2)], vec![0, 1, 5]),
        (vec![k(7)], vec![0]),
        (vec![], vec![0]),
    ];
    for (shape, ns) in shapes {
        for perm in permutations(shape.len()) {
            for &n in &ns {
                let count = concrete(&shape, n).iter().product();
                let values = rng.special(count, 5);
                exact(dev, &Op::Transpose { perm: perm.clone() }, std::slice::from_ref(&shape), None, n, &[values]);
            }
        }
    }
}

/// Slices of a `[a, b, c]`-shaped value (the axes in `shape`) that the IR's shape rule accepts
/// (open ranges start at 0 on symbolic axes), positions counting from either end.
fn slices(shape: &[Dim], n: usize) -> Vec<Vec<Slice>> {
    let mut all: Vec<Vec<Slice>> = vec![vec![]];
    for (axis, d) in shape.iter().enumerate().take(2) {
        let size = concrete(&[*d], n)[0] as i64;
        let mut options = Vec::new();
        if size > 0 {
            if !matches!(d, Dim::Known(_)) {
                // Of a known size, the same kernel as `At(-1)`.
                options.push(Slice::At(size - 1));
            }
            options.push(Slice::At(-1));
            options.push(Slice::At(0));
            options.push(Slice::Range { start: 0, end: Some(size / 2) });
            options.push(Slice::Range { start: size / 2, end: Some(size / 2) });
            options.push(Slice::Range { start: -size, end: Some(-1) });
        }
        options.push(Slice::Range { start: 0, end: None });
        if let Dim::Known(_) = d {
            options.push(Slice::Range { start: size.min(1), end: None });
        }
        if axis == 1 {
            // Of the second axis, a position from the end, a range between two positions from
            // the end and the whole axis (every program is a build: a cold cache pays for each).
            options.retain(|o| {
                matches!(o, Slice::At(i) if *i < 0)
                    || matches!(o, Slice::Range { start, .. } if *start < 0)
                    || *o == Slice::Range { start: 0, end: None }
            });
        }
        let mut next = Vec::new();
        for p in all.iter().filter(|p| p.len() == axis) {
            for o in &options {
                let mut q = p.clone();
                q.push(*o);
                next.push(q);
            }
        }
        all.extend(next);
    }
    all
}

#[test]
fn slices_and_embeds_on_odd_shapes() {
    let Some(dev) = device() else { return };
    let mut rng = Rng(3);
    let shapes: Vec<(Vec<Dim>, Vec<usize>)> = vec![
        (vec![k(5), k(4), k(3)], vec![0]),
        (vec![N, k(3)], vec![1, 6]),
        (vec![k(3), N, k(2)], vec![1, 4]),
        (vec![k(1), k(2)], vec![0]),
        (vec![k(4)], vec![0]),
    ];
    for (shape, ns) in shapes {
        for &n in &ns {
            for items in slices(&shape, n) {
                let count = concrete(&shape, n).iter().product();
                let values = rng.special(count, 5);
                let op = Op::Slice { items: items.clone() };
                exact(dev, &op, std::slice::from_ref(&shape), None, n, std::slice::from_ref(&values));
                // The embed of a value of the slice's shape into `shape`.
                let (g, _, y) = rendered(&op, std::slice::from_ref(&shape), None);
                let sliced = g.node(y).shape.clone();
                let count = concrete(&sliced, n).iter().product();
                let values = rng.special(count, 5);
                exact(dev, &Op::Embed { items }, &[sliced], Some(shape.clone()), n, &[values]);
            }
        }
    }
}

#[test]
fn concats_of_any_number_of_operands() {
    let Some(dev) = device() else { return };
    let mut rng = Rng(4);
    let cases: Vec<(usize, Vec<Vec<Dim>>, Vec<usize>)> = vec![
        (0, vec![vec![k(2), k(3)], vec![k(1), k(3)], vec![k(4), k(3)]], vec![0]),
        (1, vec![vec![N, k(2)], vec![N, k(3)], vec![N, k(1)]], vec![0, 1, 5]),
        (1, vec![vec![N, k(2)], vec![N, k(0)], vec![N, k(2)]], vec![3]),
        (2, vec![vec![k(2), N, k(1)], vec![k(2), N, k(4)]], vec![0, 3]),
        (0, vec![vec![N, k(3)]], vec![0, 2]),
        (0, vec![vec![k(5)], vec![k(2)]], vec![0]),
        (
            1,
            vec![vec![k(3), k(2), k(2)], vec![k(3), k(5), k(2)], vec![k(3), k(1), k(2)], vec![k(3), k(2), k(2)]],
            vec![0],
        ),
    ];
    for (axis, shapes, ns) in cases {
        for n in ns {
            let values: Vec<Vec<f32>> =
                shapes.iter().map(|s| rng.special(concrete(s, n).iter().product(), 5)).collect();
            exact(dev, &Op::Concat { axis }, &shapes, None, n, &values);
        }
    }
}

/// `concat(x, x)`: one buffer, read twice.
#[test]
fn a_concat_reading_one_value_twice() {
    let Some(dev) = device() else { return };
    let mut g = Graph::default();
    g.data.push(DataInfo {
        name: "x".into(),
        elem: Elem::Float,
        shape: vec![k(2), k(3)],
        source: DataSource::Columns(vec![]),
    });
    let x = g.push(Op::Data(0), &[], None, None);
    let y = g.push(Op::Concat { axis: 1 }, &[x, x], None, None);
    g.outputs.push(Output { name: "y".into(), node: y });
    let p = partition(&g);
    let r = special::render(&g, &p.kernels[0], "k0").unwrap();
    assert_eq!(r.buffers, vec![x, y]);
    let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let mut arena = values.clone();
    arena.extend([f32::from_bits(POISON); 12]);
    let after = dev.run(&format!("{PRELUDE}\n{}", r.source), "k0", &arena, &[0, 6], &[], 64, 64);
    same_bits("concat(x, x)", &after[6..], &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0]);
}

// ---------------------------------------------------------------------------------------------
// kmax

#[test]
fn kmax_with_ties_nans_and_infinities() {
    let Some(dev) = device() else { return };
    let mut rng = Rng(5);
    let cases: Vec<(Vec<Dim>, Vec<usize>)> = vec![
        (vec![N, k(10)], vec![0, 1, 9]),
        (vec![k(5), k(1)], vec![0]),
        (vec![k(3), k(0)], vec![0]),
        (vec![k(7)], vec![0]),
        (vec![k(2), N, k(13)], vec![3]),
        (vec![k(4), k(300)], vec![0]),
    ];
    for (shape, ns) in cases {
        for n in ns {
            for kk in [1u64, 2, 3, 9, 10, 17, 400] {
                for ties in [false, true] {
                    let count: usize = concrete(&shape, n).iter().product();
                    let values: Vec<f32> = if ties {
                        // Few distinct values, −0 beside +0, NaN and infinities.
                        let pick = [0.0, -0.0, 1.0, 1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -2.0];
                        (0..count).map(|_| pick[(rng.next() % pick.len() as u64) as usize]).collect()
                    } else {
                        rng.values(count, 3.0)
                    };
                    for op in [Op::KMax { k: kk }, Op::KMaxMask { k: kk }] {
                        exact(dev, &op, std::slice::from_ref(&shape), None, n, std::slice::from_ref(&values));
                    }
                }
            }
        }
    }
}

/// What is left to the interpreter.
#[test]
fn kernels_left_to_the_interpreter() {
    let long = vec![k(2), k(special::SELECT_MAX_ROW + 1)];
    assert!(rendered(&Op::KMax { k: 3 }, &[long], None).1.is_none());
    assert!(rendered(&Op::KMaxMask { k: 3 }, &[vec![k(2), N]], None).1.is_none());
    let sum = Op::Reduce { f: ReduceOp::Sum, axes: vec![1], keepdims: false };
    assert!(rendered(&sum, &[vec![k(2), k(3)]], None).1.is_none());
}

// ---------------------------------------------------------------------------------------------
// Through the executor.

/// A slice position past a symbolic axis's run-time size is the interpreter's error (the
/// executor asks `special::fits` and runs the node on the host), and in range the rendered
/// kernels give the interpreter's bits.
#[test]
fn a_slice_past_a_symbolic_size_is_the_interpreters_error() {
    use circ::backend::opencl::executor::{ClError, ClExecutor};
    use circ::interp::{self, HostTensor, InterpError};
    if device().is_none() {
        return;
    }
    let mut g = Graph::default();
    g.syms = vec!["N".into()];
    g.data.push(DataInfo {
        name: "x".into(),
        elem: Elem::Float,
        shape: vec![N, k(3)],
        source: DataSource::Columns(vec![]),
    });
    let x = g.push(Op::Data(0), &[], None, None);
    let s = g.push(Op::Slice { items: vec![Slice::At(4)] }, &[x], None, None);
    let t = g.push(Op::Transpose { perm: vec![1, 0] }, &[x], None, None);
    let l = g.push(Op::LogSumExp { axis: 0, keepdims: false }, &[s], None, None);
    g.outputs.push(Output { name: "loss".into(), node: l });
    g.outputs.push(Output { name: "t".into(), node: t });
    circ::ir::verify::verify(&g).unwrap();
    let mut exec = ClExecutor::new(&g, None).unwrap();
    assert_eq!(exec.stats().host, 0, "{:?}", exec.stats());
    for n in [5usize, 2, 7] {
        let data = vec![HostTensor::new(vec![n, 3], (0..3 * n).map(|i| i as f64).collect())];
        let want = interp::run_with::<f32>(&g, &data, &[], &[]);
        match (exec.run(&data, &[], &[]), want) {
            (Ok(a), Ok(b)) => {
                let got = |name: &str| a.iter().find(|(o, _)| o == name).unwrap().1.data.clone();
                same_bits("t", &got("t"), &b.get("t").unwrap().data);
                let (x, y) = (got("loss")[0], b.get("loss").unwrap().data[0]);
                assert!((x - y).abs() <= 1e-5 * y.abs(), "loss {x} vs {y}");
            }
            (Err(ClError::Interp(a)), Err(b)) => {
                assert_eq!(a, b);
                assert!(matches!(a, InterpError::Node { .. }), "{a}");
            }
            (a, b) => panic!("N = {n}: executor {:?}, interpreter {:?}", a.map(|_| ()), b.map(|_| ())),
        }
    }
}
