//! The kernel partition and buffer plan (`src/kernel/`), checked on every example and on a model
//! that uses every op, each as four graphs: lowered, optimized, with parameter gradients, and the
//! whole training step (update rule `adam(lr = 1e-3)` where the model names none).
//!
//! `check` verifies, independently of the code under test:
//! - cover: every non-leaf node is computed by exactly one kernel or is a view (the reshapes);
//!   each kernel's nodes come after the kernel's nodes they read; its inputs and outputs are
//!   exactly the values it reads from outside and the values read outside it or named outputs;
//! - order: every kernel input is a leaf, a view of an available value, or an output of an
//!   earlier kernel;
//! - buffers, by simulation: lifetimes recomputed from the partition, no two values whose
//!   lifetimes overlap share a slot, no kernel writes a slot it reads, slots hold their values and
//!   do not overlap in the arena, and the peak is the largest live total;
//! - execution: running the kernels one after another with the interpreter's per-op kernels
//!   (`circ::interp::ops`), operands read from and results written into the planned slots of one
//!   f64 arena, gives the interpreter's outputs bit for bit on random data.
//!
//! Snapshots (`tests/snapshots/kernel/`) list the partition and plan of `mlp_digits` and `ridge`.
//! Peak memory of the 784-256-256-10 MLP step at batch 128 is printed by
//! `cargo test --test kernel -- --nocapture`.

use circ::check::types::{Dim, Elem};
use circ::interp::{self, ops, HostTensor, Tensor};
use circ::ir::{Graph, NodeId, Op};
use circ::kernel::{self, BufferPlan, Partition, ELEMENT_BYTES, SLOT_ALIGN};
use std::collections::{HashMap, HashSet};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Graphs.

/// The four graphs of every model in `text`: (stage name, graph).
fn stages(file: &str, text: &str) -> Vec<(String, Graph)> {
    let checked = circ::driver::check_source(file, text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let adam = circ::driver::parse_update_rule("adam(lr = 1e-3)").expect("a valid rule");
    let mut out = Vec::new();
    for (model, lowered) in checked.models.iter().zip(circ::driver::lower(&checked, 0)) {
        let mut optimized = lowered.clone();
        circ::passes::optimize(&mut optimized);
        let mut gradient = optimized.clone();
        circ::autodiff::add_param_gradients(&mut gradient);
        circ::passes::optimize(&mut gradient);
        let step = circ::train::step::build(model, 0, &adam).graph;
        let name = &model.name;
        out.push((format!("{name} lowered"), lowered));
        out.push((format!("{name} optimized"), optimized));
        out.push((format!("{name} gradient"), gradient));
        out.push((format!("{name} step"), step));
    }
    out
}

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the examples of the brief");
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name.clone(), std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Every op of the IR in one model: its gradient adds `embed`, `expand`, `kmax_mask`, `eq`.
const EVERY_OP: &str = r#"
model every_op {
    data x: [N, 6] = csv("a" .. "f")
    data label: int[N]
    param w: [6, 4] ~ normal(0, 1)
    param v: [3, 3] ~ normal(0, 1)
    let cube = reshape(x, [-1, 2, 3])
    let t = transpose(cube, [0, 2, 1])
    let flat = reshape(t, [N, 6])
    let wide = concat(flat, one_hot(label, 4), axis = 1)
    let top = kmax(wide, 7)
    let h = tanh(kmax(top[:, 0:6] @ w, 3))
    let c = cube @ v
    let r = max(h, axis = 1, keepdims = true)
    let p = softmax(h - r)
    let q = sum(p * h, axis = 1) + logsumexp(c[:, 1, :], axis = 1) + mean(shrink(c, 0.1), axis = [1, 2])
    label ~ categorical(logits = h)
    q ~ normal(0, 1)
}
"#;

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
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Every symbol is bound to `n`.
fn concrete(shape: &[Dim], n: usize) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Known(k) => *k as usize,
            Dim::Sym(_) => n,
            Dim::Any => panic!("a verified graph has no unknown size"),
        })
        .collect()
}

fn elements(shape: &[Dim], n: usize) -> usize {
    concrete(shape, n).iter().product()
}

/// Partitions and plans `g` with every symbol bound to `n`, checks everything, and returns both.
fn check(label: &str, g: &Graph, n: usize) -> (Partition, BufferPlan) {
    circ::ir::verify::verify(g).unwrap_or_else(|e| panic!("{label}: {e:?}"));
    let p = kernel::partition(g);
    let plan = kernel::plan(g, &p, |d| concrete(&[d], n)[0] as u64);
    check_cover(label, g, &p);
    check_order(label, g, &p);
    check_buffers(label, g, &p, &plan, n);
    check_execution(label, g, &p, &plan, n);
    (p, plan)
}

fn check_cover(label: &str, g: &Graph, p: &Partition) {
    let named: HashSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    let mut computed: HashMap<NodeId, usize> = HashMap::new();
    for (i, k) in p.kernels.iter().enumerate() {
        let set: HashSet<NodeId> = k.nodes.iter().copied().collect();
        for (j, n) in k.nodes.iter().enumerate() {
            assert!(!g.node(*n).op.is_leaf(), "{label}: kernel {i} computes leaf {n}");
            assert!(computed.insert(*n, i).is_none(), "{label}: {n} is in two kernels");
            for o in g.operands(*n) {
                if set.contains(&o) {
                    assert!(k.nodes[..j].contains(&o), "{label}: kernel {i} computes {n} before its operand {o}");
                }
            }
        }
        let mut inputs = Vec::new();
        for n in &k.nodes {
            for o in g.operands(*n) {
                if !set.contains(&o) && !inputs.contains(&o) {
                    inputs.push(o);
                }
            }
        }
        assert_eq!(k.inputs, inputs, "{label}: inputs of kernel {i}");
        let outputs: Vec<NodeId> = k
            .nodes
            .iter()
            .copied()
            .filter(|n| named.contains(n) || g.users(*n).iter().any(|u| !set.contains(u)))
            .collect();
        assert_eq!(k.outputs, outputs, "{label}: outputs of kernel {i}");
        let spans: HashSet<_> = k.nodes.iter().filter_map(|n| g.node(*n).span).collect();
        assert_eq!(k.spans.iter().copied().collect::<HashSet<_>>(), spans, "{label}: spans of kernel {i}");
        assert_eq!(k.spans.len(), spans.len(), "{label}: spans of kernel {i} repeat");
    }
    assert_eq!(p.kernel_of().into_iter().collect::<HashMap<_, _>>(), computed, "{label}: kernel_of");
    let views: HashSet<NodeId> = p.views.iter().map(|v| v.node).collect();
    for id in g.node_ids() {
        let op = &g.node(id).op;
        let is_view = views.contains(&id);
        let transposed = p.views.iter().any(|v| v.node == id && v.transposed);
        let viewable = *op == Op::Reshape || matches!(op, Op::Transpose { .. }) && transposed;
        assert_eq!(is_view, viewable, "{label}: {id} ({}) is a view exactly when it is a reshape", op.name());
        if transposed {
            assert!(g.users(id).iter().all(|u| g.node(*u).op == Op::MatMul), "{label}: {id} is read by a non-product");
        }
        if !op.is_leaf() {
            assert!(computed.contains_key(&id) != is_view, "{label}: {id} ({}) is computed once or viewed", op.name());
        }
    }
}

fn check_order(label: &str, g: &Graph, p: &Partition) {
    let mut available: HashSet<NodeId> = g.node_ids().into_iter().filter(|n| g.node(*n).op.is_leaf()).collect();
    let add_views = |available: &mut HashSet<NodeId>| {
        // Views of views: repeat until nothing changes.
        loop {
            let before = available.len();
            for v in &p.views {
                if available.contains(&g.operands(v.node)[0]) {
                    assert!(available.contains(&v.base), "{label}: the base of view {} is not available", v.node);
                    available.insert(v.node);
                }
            }
            if available.len() == before {
                break;
            }
        }
    };
    add_views(&mut available);
    for (i, k) in p.kernels.iter().enumerate() {
        for input in &k.inputs {
            assert!(available.contains(input), "{label}: kernel {i} reads {input} before it is computed");
        }
        available.extend(k.outputs.iter().copied());
        add_views(&mut available);
    }
    for o in &g.outputs {
        assert!(available.contains(&o.node), "{label}: output {} is never computed", o.name);
    }
}

fn check_buffers(label: &str, g: &Graph, p: &Partition, plan: &BufferPlan, n: usize) {
    let end = p.kernels.len();
    let base = |id: NodeId| p.base(id);
    // Lifetimes, recomputed: [first, last] in kernel indices.
    let mut life: HashMap<NodeId, (usize, usize)> = HashMap::new();
    for id in g.node_ids() {
        if g.node(id).op.is_leaf() {
            life.insert(id, (0, end));
        }
    }
    for (i, k) in p.kernels.iter().enumerate() {
        for o in &k.outputs {
            life.insert(*o, (i, i));
        }
        for input in &k.inputs {
            let l = life.get_mut(&base(*input)).unwrap_or_else(|| panic!("{label}: {input} has no lifetime"));
            l.1 = l.1.max(i);
        }
    }
    for o in &g.outputs {
        life.get_mut(&base(o.node)).expect("outputs are stored").1 = end;
    }
    // Every stored value has a slot of its size; internal values have none; views share.
    let bytes = |id: NodeId| elements(&g.node(id).shape, n) as u64 * ELEMENT_BYTES;
    let mut by_slot: HashMap<usize, Vec<NodeId>> = HashMap::new();
    for (id, (first, last)) in &life {
        let s = plan.slot(*id).unwrap_or_else(|| panic!("{label}: stored value {id} has no slot"));
        assert!(plan.slots[s].bytes >= bytes(*id), "{label}: slot {s} is too small for {id}");
        assert_eq!(plan.slots[s].leaf, g.node(*id).op.is_leaf(), "{label}: leaves have their own slots");
        let stored = plan.values.iter().find(|v| v.node == *id).expect("listed");
        assert_eq!(
            (stored.first, stored.last, stored.slot, stored.bytes),
            (*first, *last, s, bytes(*id)),
            "{label}: {id}"
        );
        by_slot.entry(s).or_default().push(*id);
    }
    assert_eq!(plan.values.len(), life.len(), "{label}: stored values");
    for k in &p.kernels {
        for node in &k.nodes {
            if !k.outputs.contains(node) {
                assert_eq!(plan.slot(*node), None, "{label}: internal {node} has a slot");
            }
        }
    }
    for v in &p.views {
        assert_eq!(plan.slot(v.node), plan.slot(v.base), "{label}: view {} is not in its base's slot", v.node);
    }
    // Simulation: at each kernel, no slot holds two live values.
    for t in 0..=end {
        let mut holder: HashMap<usize, NodeId> = HashMap::new();
        for (id, (first, last)) in &life {
            if *first <= t && t <= *last {
                if let Some(other) = holder.insert(plan.slot(*id).unwrap(), *id) {
                    panic!("{label}: {id} and {other} share slot {} at kernel {t}", plan.slot(*id).unwrap());
                }
            }
        }
    }
    for (s, ids) in &by_slot {
        if plan.slots[*s].leaf {
            assert_eq!(ids.len(), 1, "{label}: leaf slot {s} is shared");
        }
    }
    for (i, k) in p.kernels.iter().enumerate() {
        let read: HashSet<usize> = k.inputs.iter().filter_map(|x| plan.slot(*x)).collect();
        for o in &k.outputs {
            assert!(!read.contains(&plan.slot(*o).unwrap()), "{label}: kernel {i} writes {o} into a slot it reads");
        }
    }
    // The arena: aligned, non-overlapping slots.
    let mut end_of_last = 0;
    for (i, s) in plan.slots.iter().enumerate() {
        assert_eq!(s.offset % SLOT_ALIGN, 0, "{label}: slot {i} is not aligned");
        assert!(s.offset >= end_of_last, "{label}: slot {i} overlaps the one before");
        end_of_last = s.offset + s.bytes;
    }
    assert!(plan.arena_bytes >= end_of_last, "{label}: the arena is too small");
    let peak = (0..end)
        .map(|t| life.iter().filter(|(_, (f, l))| *f <= t && t <= *l).map(|(id, _)| bytes(*id)).sum::<u64>())
        .max()
        .unwrap_or(plan.leaf_bytes);
    assert_eq!(plan.peak_bytes, peak, "{label}: peak bytes");
    assert!(plan.arena_bytes >= plan.peak_bytes, "{label}: the arena is smaller than the peak");
}

/// Random data (symbols bound to `n`), the initial parameters, and positive extra inputs.
fn feed(g: &Graph, n: usize, seed: u64) -> (Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut rng = Rng(seed);
    let data = g
        .data
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let shape = concrete(&info.shape, n);
            let count: usize = shape.iter().product();
            let values = match info.elem {
                Elem::Float => (0..count).map(|_| rng.uniform(0.1, 1.5)).collect(),
                Elem::Int => {
                    let classes = g
                        .node_ids()
                        .into_iter()
                        .filter(|d| g.node(*d).op == Op::Data(i))
                        .flat_map(|d| g.users(d))
                        .find_map(|u| match g.node(u).op {
                            Op::OneHot { classes } => Some(classes),
                            _ => None,
                        })
                        .unwrap_or(2);
                    (0..count).map(|_| (rng.next() % classes) as f64).collect()
                }
            };
            HostTensor::new(shape, values)
        })
        .collect();
    let params = circ::ir::init::initial_values(g);
    let inputs = g
        .inputs
        .iter()
        .map(|i| {
            let count: u64 = i.shape.iter().product();
            if i.name == "step" {
                vec![3.0]
            } else {
                (0..count).map(|_| rng.uniform(0.1, 1.0)).collect()
            }
        })
        .collect();
    (data, params, inputs)
}

/// One node's value from its operands', with the interpreter's per-op kernels.
fn eval(op: &Op, x: &[&Tensor<f64>], shape: &[usize]) -> Tensor<f64> {
    let r = match op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => panic!("a kernel computes no leaf"),
        Op::Reshape => panic!("a kernel computes no view"),
        Op::Unary(f) => Ok(ops::unary(*f, x[0])),
        Op::Binary(f) => ops::binary(*f, x[0], x[1]),
        Op::MatMul => ops::matmul(x[0], x[1]),
        Op::Reduce { f, axes, keepdims } => ops::reduce(*f, axes, *keepdims, x[0]),
        Op::LogSumExp { axis, keepdims } => ops::logsumexp(*axis, *keepdims, x[0]),
        Op::Transpose { perm } => ops::transpose(perm, x[0]),
        Op::Concat { axis } => ops::concat(*axis, x),
        Op::Slice { items } => ops::slice(items, x[0]),
        Op::KMax { k } => ops::kmax(*k, x[0]),
        Op::OneHot { classes } => ops::one_hot(*classes, x[0]),
        Op::Cast => Ok(x[0].clone()),
        Op::Expand => ops::expand(x[0], shape),
        Op::Embed { items } => ops::embed(items, x[0], shape),
        Op::KMaxMask { k } => ops::kmax_mask(*k, x[0]),
    };
    r.expect("the operands fit")
}

/// Runs the partition kernel by kernel through the planned slots of one arena, and compares every
/// output with the interpreter's, bit for bit.
fn check_execution(label: &str, g: &Graph, p: &Partition, plan: &BufferPlan, n: usize) {
    let (data, params, inputs) = feed(g, n, 0x5eed ^ g.len() as u64);
    let want = interp::run_with::<f64>(g, &data, &params, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut arena = vec![f64::NAN; (plan.arena_bytes / ELEMENT_BYTES) as usize];
    let at = |id: NodeId| {
        let s = plan.slot(id).unwrap_or_else(|| panic!("{label}: {id} is read but has no slot"));
        (plan.slots[s].offset / ELEMENT_BYTES) as usize
    };
    let size = |id: NodeId| elements(&g.node(id).shape, n);
    for id in g.node_ids() {
        let values: Vec<f64> = match g.node(id).op {
            Op::Data(i) => data[i].values.clone(),
            Op::Param(i) => params[i].clone(),
            Op::Input(i) => inputs[i].clone(),
            Op::Const(c) => vec![c],
            _ => continue,
        };
        assert_eq!(values.len(), size(id));
        let o = at(id);
        arena[o..o + values.len()].copy_from_slice(&values);
    }
    for k in &p.kernels {
        let mut local: HashMap<NodeId, Tensor<f64>> = HashMap::new();
        for node in &k.nodes {
            let read: Vec<Tensor<f64>> = g
                .operands(*node)
                .iter()
                .map(|o| match local.get(o) {
                    Some(t) => t.clone(),
                    None => {
                        let (off, len) = (at(*o), size(*o));
                        let data = arena[off..off + len].to_vec();
                        match p.views.iter().find(|v| v.node == *o && v.transposed) {
                            // The buffer holds the operand of the transpose: transpose it here.
                            Some(v) => {
                                let base = Tensor { shape: concrete(&g.node(g.operands(v.node)[0]).shape, n), data };
                                eval(&g.node(v.node).op, &[&base], &concrete(&g.node(*o).shape, n))
                            }
                            None => Tensor { shape: concrete(&g.node(*o).shape, n), data },
                        }
                    }
                })
                .collect();
            let refs: Vec<&Tensor<f64>> = read.iter().collect();
            let shape = concrete(&g.node(*node).shape, n);
            let value = eval(&g.node(*node).op, &refs, &shape);
            assert_eq!(value.shape, shape, "{label}: {node}");
            local.insert(*node, value);
        }
        for o in &k.outputs {
            let off = at(*o);
            let v = &local[o].data;
            assert!((v.len() as u64) * ELEMENT_BYTES <= plan.slots[plan.slot(*o).unwrap()].bytes);
            arena[off..off + v.len()].copy_from_slice(v);
        }
    }
    for o in &g.outputs {
        let off = at(o.node);
        let got = &arena[off..off + size(o.node)];
        let want = &want.get(&o.name).expect("every output").data;
        let same = got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{label}: output {} differs:\n got {got:?}\nwant {want:?}", o.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn every_example_partitions_plans_and_runs_as_the_interpreter() {
    let mut cases = examples();
    cases.push(("every_op".into(), EVERY_OP.into()));
    let mut products_with_epilogues = 0;
    for (name, text) in cases {
        for (stage, g) in stages(&format!("examples/{name}.circ"), &text) {
            let (p, plan) = check(&format!("{name}: {stage}"), &g, 5);
            products_with_epilogues +=
                p.kernels.iter().filter(|k| k.kind == kernel::KernelKind::MatMul && k.nodes.len() > 1).count();
            println!(
                "{name:>15} {stage:<28} {:>4} nodes {:>4} kernels {:>3} views {:>4} slots, peak {:>9} B, arena {:>9} B",
                g.len(),
                p.kernels.len(),
                p.views.len(),
                plan.slots.len(),
                plan.peak_bytes,
                plan.arena_bytes
            );
        }
    }
    assert!(products_with_epilogues > 0, "no product took an epilogue");
}

#[test]
fn the_op_model_exercises_every_kernel_kind_and_every_op() {
    let mut ops: HashSet<String> = HashSet::new();
    let mut kinds = HashSet::new();
    for (_, g) in stages("every_op.circ", EVERY_OP) {
        let p = kernel::partition(&g);
        for id in g.node_ids() {
            let name = g.node(id).op.name();
            ops.insert(name.split([' ', '[', '#']).next().unwrap().to_string());
        }
        for k in &p.kernels {
            kinds.insert(k.kind);
        }
    }
    for op in ["reshape", "transpose", "concat", "slice", "embed", "expand", "kmax", "kmax_mask", "one_hot", "matmul"] {
        assert!(ops.contains(op), "the op model has no {op}: {ops:?}");
    }
    use kernel::KernelKind::*;
    for kind in [Elementwise, MatMul, Reduce, Copy, Select, OneHot] {
        assert!(kinds.contains(&kind), "no {kind:?} kernel");
    }
}

#[test]
fn partition_and_buffer_snapshots() {
    for name in ["mlp_digits", "ridge"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.circ"));
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = circ::driver::check_source(&format!("examples/{name}.circ"), &text);
        let sources = &checked.program.sources;
        let mut report = String::from("Every symbol (N) is 64.\n");
        for (stage, g) in stages(&format!("examples/{name}.circ"), &text) {
            if stage.ends_with("lowered") || stage.ends_with("gradient") {
                continue;
            }
            let (p, plan) = check(&format!("{name}: {stage}"), &g, 64);
            report.push_str(&format!("== {stage}\n{}", circ::ir::print::text(&g, Some(sources))));
            report.push_str(&format!("-- kernels\n{}", kernel::describe(&g, &p, &plan)));
        }
        insta::with_settings!({ snapshot_path => "snapshots/kernel", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, report);
        });
    }
}

/// The MLP of the CPU backend's benchmark: 784-256-256-10, batch 128.
const MLP: &str = r#"
import nn
model mlp {
    data x: [N, 784] = csv("p0" .. "p783")
    data label: int[N]
    let l1 = nn.dense(784, 256)
    let l2 = nn.dense(256, 256)
    let l3 = nn.dense(256, 10)
    label ~ categorical(logits = l3(relu(l2(relu(l1(x))))))
    train { optimizer = sgd(lr = 0.01), epochs = 1, batch = 128, seed = 0 }
}
"#;

#[test]
fn peak_memory_of_the_784_256_256_10_mlp_step_at_batch_128() {
    let checked = circ::driver::check_source("mlp.circ", MLP);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let model = &checked.models[0];
    for rule in ["sgd(lr = 0.01)", "adam(lr = 1e-3)"] {
        let default = circ::driver::parse_update_rule(rule).unwrap();
        // No parameter names its own rule, so every one updates by `default`.
        let step = circ::train::step::build(model, 0, &default).graph;
        let (p, plan) = check(&format!("mlp step {rule}"), &step, 128);
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "mlp 784-256-256-10 step, {rule}, batch 128: {} kernels, {} slots; peak {} B ({:.2} MiB), of which \
             leaves {} B ({:.2} MiB); arena {} B ({:.2} MiB)",
            p.kernels.len(),
            plan.slots.len(),
            plan.peak_bytes,
            mb(plan.peak_bytes),
            plan.leaf_bytes,
            mb(plan.leaf_bytes),
            plan.arena_bytes,
            mb(plan.arena_bytes)
        );
        // Parameters alone are 269 322 floats; the plan must hold them, a batch of images, and
        // at most a few activations of the batch at once.
        assert!(plan.leaf_bytes > 269_322 * 4);
        assert!(plan.peak_bytes < plan.leaf_bytes + 16 * 128 * 784 * 4);
    }
}
