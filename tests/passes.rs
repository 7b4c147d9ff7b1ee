//! The graph passes against the reference interpreter.
//!
//! - Random graphs: hundreds of seeded, well-formed graphs mixing every op with the patterns each
//!   rewrite looks for (`x·1`, `−−x`, `log exp x`, nested transposes and reshapes, `pow(x, 2)`,
//!   duplicated subtrees, constant subexpressions, …). Each pass of the pipeline is run in turn to
//!   the fixed point; after every pass the graph must verify and every output must have the value
//!   it had before, in f64, to within 1e-12 relative (see `close`). The generator keeps every
//!   value finite (interval bounds decide where `log`, `sqrt`, `/` and `exp` may go), so the
//!   comparison never has to excuse a NaN. The generator is `tests/common/random_graph.rs`,
//!   shared with `tests/executors.rs`.
//! - Fusion groups of the same graphs satisfy the grouping rule of `passes/fusion.rs`, checked
//!   independently (groups contracted to one node each leave an acyclic graph).
//! - Every example lowers, optimizes, verifies and evaluates to the same outputs; node counts are
//!   printed (`cargo test --test passes -- --nocapture`).

use circ::check::types::{Dim, Elem};
use circ::interp::HostTensor;
use circ::ir::graph::Node;
use circ::ir::op::{BinaryOp, UnaryOp};
use circ::ir::verify::verify;
use circ::ir::{Graph, NodeId, Op};
use circ::passes::{self, fusion};
use std::collections::{HashMap, HashSet};

#[path = "common/random_graph.rs"]
mod random_graph;

use random_graph::{random_graph, Rng};

// ---------------------------------------------------------------------------------------------
// Comparing outputs.

type Values = Vec<(String, Vec<usize>, Vec<f64>)>;

fn eval(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Values {
    let out = circ::interp::run::<f64>(g, data, params).unwrap_or_else(|e| panic!("interpreter: {e:?}"));
    out.iter().map(|(n, t)| (n.to_string(), t.shape.clone(), t.to_f64())).collect()
}

/// Equal to within 1e-12 of the larger magnitude, with a floor of 1e-12 for values near zero
/// (a rewrite may turn a rounding residue such as `x/3 − x·(1/3)` into an exact 0). NaN equals NaN.
fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * (a.abs().max(b.abs()) + 1.0)
}

/// Checks every output; on success returns the largest difference seen, in units of `close`'s
/// tolerance scale (`|a − b| / (max(|a|, |b|) + 1)`).
fn compare(before: &Values, after: &Values) -> Result<f64, String> {
    let mut worst: f64 = 0.0;
    for ((n, s, a), (n2, s2, b)) in before.iter().zip(after) {
        if n != n2 || s != s2 {
            return Err(format!("output {n}{s:?} became {n2}{s2:?}"));
        }
        if let Some(i) = (0..a.len()).find(|i| !close(a[*i], b[*i])) {
            return Err(format!("output {n}[{i}]: {} became {}", a[i], b[i]));
        }
        for (x, y) in a.iter().zip(b) {
            if x != y && !(x.is_nan() && y.is_nan()) {
                worst = worst.max((x - y).abs() / (x.abs().max(y.abs()) + 1.0));
            }
        }
    }
    Ok(worst)
}

// ---------------------------------------------------------------------------------------------
// Checking fusion groups against the rule in `passes/fusion.rs`, independently of its code.

fn check_groups(g: &Graph) -> Result<(), String> {
    let groups = fusion::groups(g);
    let text = || fusion::describe(g, &groups);
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    for (i, grp) in groups.iter().enumerate() {
        let set: HashSet<NodeId> = grp.nodes.iter().copied().collect();
        for n in &grp.nodes {
            if group_of.insert(*n, i).is_some() {
                return Err(format!("{n} is in two groups\n{}", text()));
            }
            let node = g.node(*n);
            if Some(*n) == grp.epilogue {
                if !matches!(node.op, Op::Reduce { .. }) || grp.nodes.last() != Some(n) {
                    return Err(format!("epilogue {n} is not a final reduction\n{}", text()));
                }
                let x = g.operands(*n)[0];
                if !set.contains(&x) || g.users(x) != [*n] || outputs.contains(&x) {
                    return Err(format!("epilogue {n} reads a value needed elsewhere\n{}", text()));
                }
            } else if !node.op.is_elementwise() || node.shape != grp.shape {
                return Err(format!("{n} does not belong in group {i}\n{}", text()));
            }
            let escapes = outputs.contains(n) || g.users(*n).iter().any(|u| !set.contains(u));
            if escapes != grp.outputs.contains(n) {
                return Err(format!("{n}: outputs of group {i} are wrong\n{}", text()));
            }
        }
        for inp in &grp.inputs {
            if set.contains(inp) {
                return Err(format!("input {inp} of group {i} is a member\n{}", text()));
            }
        }
        let needed: HashSet<NodeId> =
            grp.nodes.iter().flat_map(|n| g.operands(*n)).filter(|o| !set.contains(o)).collect();
        if needed != grp.inputs.iter().copied().collect() {
            return Err(format!("inputs of group {i} are wrong\n{}", text()));
        }
        // Members in a topological order: each after the members it reads.
        for (j, n) in grp.nodes.iter().enumerate() {
            if g.operands(*n).iter().any(|o| grp.nodes[j..].contains(o)) {
                return Err(format!("group {i} is not in topological order at {n}\n{}", text()));
            }
        }
    }
    for n in g.node_ids() {
        if g.node(n).op.is_elementwise() && !group_of.contains_key(&n) {
            return Err(format!("elementwise {n} is in no group\n{}", text()));
        }
    }
    // Contract every group to one node: the result must still be acyclic (each group is one loop
    // that never waits on itself). Kahn's algorithm on the contracted graph.
    let key = |n: NodeId| group_of.get(&n).map_or(n.index() + groups.len(), |g| *g);
    let mut edges: HashSet<(usize, usize)> = HashSet::new();
    for n in g.node_ids() {
        for o in g.operands(n) {
            if key(o) != key(n) {
                edges.insert((key(o), key(n)));
            }
        }
    }
    let nodes: HashSet<usize> = g.node_ids().into_iter().map(key).collect();
    let mut indeg: HashMap<usize, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (_, b) in &edges {
        *indeg.get_mut(b).unwrap() += 1;
    }
    let mut ready: Vec<usize> = indeg.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
    let mut done = 0;
    while let Some(n) = ready.pop() {
        done += 1;
        for (a, b) in &edges {
            if *a == n {
                let d = indeg.get_mut(b).unwrap();
                *d -= 1;
                if *d == 0 {
                    ready.push(*b);
                }
            }
        }
    }
    if done != nodes.len() {
        return Err(format!("contracting the groups leaves a cycle\n{}", text()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tests.

const GRAPHS: u64 = 600;

#[test]
fn every_pass_keeps_every_output_on_random_graphs() {
    let mut changed: HashMap<&str, usize> = HashMap::new();
    let (mut before_nodes, mut after_nodes) = (0, 0);
    let mut worst: f64 = 0.0;
    for seed in 0..GRAPHS {
        let (g0, data, params) = random_graph(seed);
        let shown = circ::ir::print::text(&g0, None);
        verify(&g0).unwrap_or_else(|e| panic!("seed {seed}: the generator made an invalid graph: {e:?}\n{shown}"));
        let want = eval(&g0, &data, &params);
        for (n, _, v) in &want {
            assert!(v.iter().all(|x| x.is_finite()), "seed {seed}: output {n} is not finite: {v:?}\n{shown}");
        }
        let mut g = g0.clone();
        let mut rounds = 0;
        loop {
            let mut any = false;
            for (name, pass) in passes::PIPELINE {
                let before = circ::ir::print::text(&g, None);
                let c = pass(&mut g);
                let fail = |why: String| {
                    panic!(
                        "seed {seed}, after {name}: {why}\nbefore:\n{before}\nafter:\n{}",
                        circ::ir::print::text(&g, None)
                    )
                };
                if let Err(e) = verify(&g) {
                    fail(format!("{e:?}"));
                }
                match compare(&want, &eval(&g, &data, &params)) {
                    Ok(d) => worst = worst.max(d),
                    Err(e) => fail(e),
                }
                if c {
                    *changed.entry(name).or_default() += 1;
                }
                any |= c;
            }
            rounds += 1;
            if !any {
                break;
            }
            assert!(rounds < passes::MAX_ROUNDS, "seed {seed}: no fixed point after {rounds} rounds");
        }
        // The pipeline entry point reaches the same graph, and a second call changes nothing.
        let mut h = g0.clone();
        passes::optimize(&mut h);
        assert_eq!(circ::ir::print::text(&h, None), circ::ir::print::text(&g, None), "seed {seed}");
        assert!(passes::optimize(&mut h).iter().all(|(_, c)| !c), "seed {seed}: optimize is not idempotent");
        for graph in [&g0, &g] {
            if let Err(e) = check_groups(graph) {
                panic!("seed {seed}: {e}\n{}", circ::ir::print::text(graph, None));
            }
        }
        // Dead code: a node no output uses goes, and nothing else does.
        let mut d = g0.clone();
        d.add(Node { op: Op::Const(1.0), elem: Elem::Float, shape: vec![], span: None, label: None }, &[]);
        assert!(passes::dce::run(&mut d) && d.len() == g0.len() && !passes::dce::run(&mut d), "seed {seed}: dce");
        verify(&d).unwrap();
        before_nodes += g0.len();
        after_nodes += g.len();
    }
    println!(
        "{GRAPHS} random graphs: {before_nodes} nodes before, {after_nodes} after; largest relative difference {worst:e}; \
         passes that changed a graph: {changed:?}"
    );
    // Each rewriting pass has had something to do. (`dce` has nothing left: every pass removes
    // what it leaves unused, so that the graph verifies after it; it is tested below.)
    for name in ["const_fold", "simplify", "cse"] {
        assert!(changed.get(name).copied().unwrap_or(0) > 0, "{name} never changed a random graph");
    }
}

#[test]
fn the_generator_makes_every_pattern() {
    // The patterns the passes look for do occur (so the property test above exercises them).
    let mut seen: HashSet<String> = HashSet::new();
    for seed in 0..GRAPHS {
        let (g, _, _) = random_graph(seed);
        for n in g.node_ids() {
            let op = &g.node(n).op;
            let xs = g.operands(n);
            let inner = |i: usize| g.node(xs[i]).op.clone();
            let tag = match op {
                Op::Unary(UnaryOp::Neg) if inner(0) == Op::Unary(UnaryOp::Neg) => "neg neg",
                Op::Unary(UnaryOp::Log) if inner(0) == Op::Unary(UnaryOp::Exp) => "log exp",
                Op::Unary(UnaryOp::Square | UnaryOp::Abs) if inner(0) == Op::Unary(UnaryOp::Neg) => "square/abs neg",
                Op::Transpose { .. } if matches!(inner(0), Op::Transpose { .. }) => "transpose transpose",
                Op::Reshape if inner(0) == Op::Reshape => "reshape reshape",
                Op::Binary(BinaryOp::Pow) if inner(1) == Op::Const(2.0) => "pow 2",
                Op::Binary(BinaryOp::Mul) if inner(1) == Op::Const(1.0) || inner(0) == Op::Const(1.0) => "mul 1",
                Op::Binary(BinaryOp::Add) if inner(1) == Op::Const(0.0) || inner(0) == Op::Const(0.0) => "add 0",
                Op::Binary(BinaryOp::Div) if matches!(inner(1), Op::Const(_)) => "div const",
                Op::Reduce { axes, .. } if axes.is_empty() => "reduce no axes",
                Op::MatMul => "matmul",
                Op::LogSumExp { .. } => "logsumexp",
                Op::Concat { .. } => "concat",
                Op::Slice { .. } => "slice",
                Op::KMax { .. } => "kmax",
                Op::OneHot { .. } => "one_hot",
                Op::Cast => "cast",
                _ => continue,
            };
            seen.insert(tag.to_string());
        }
    }
    let mut missing: Vec<&str> = [
        "neg neg",
        "log exp",
        "square/abs neg",
        "transpose transpose",
        "reshape reshape",
        "pow 2",
        "mul 1",
        "add 0",
        "div const",
        "reduce no axes",
        "matmul",
        "logsumexp",
        "concat",
        "slice",
        "kmax",
        "one_hot",
        "cast",
    ]
    .into_iter()
    .filter(|t| !seen.contains(*t))
    .collect();
    missing.sort_unstable();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

/// Random inputs for a lowered model: each symbol bound to 5, integer data 0 or 1 (a valid label
/// for every likelihood), reals in [-1, 1], parameters in [0.1, 1] (positive, for log-normal priors).
fn example_inputs(g: &Graph, rng: &mut Rng) -> (Vec<HostTensor>, Vec<Vec<f64>>) {
    let data = g
        .data
        .iter()
        .map(|d| {
            let shape: Vec<usize> =
                d.shape.iter().map(|x| if let Dim::Known(n) = x { *n as usize } else { 5 }).collect();
            let n = shape.iter().product();
            let values = (0..n)
                .map(|_| if d.elem == Elem::Int { rng.below(2) as f64 } else { rng.uniform(-1.0, 1.0) })
                .collect();
            HostTensor { shape, values }
        })
        .collect();
    let params = g
        .params
        .iter()
        .map(|p| (0..p.shape.iter().product::<u64>()).map(|_| rng.uniform(0.1, 1.0)).collect())
        .collect();
    (data, params)
}

#[test]
fn every_example_optimizes_to_a_verified_graph_with_the_same_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    let mut report = String::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = circ::driver::check_source(path.to_str().unwrap(), &text);
        assert!(!checked.has_errors(), "{}:\n{}", path.display(), checked.render(false));
        for (m, mut g) in circ::driver::lower(&checked, 0).into_iter().enumerate() {
            let name = format!("{}#{m}", path.file_name().unwrap().to_string_lossy());
            verify(&g).unwrap_or_else(|e| panic!("{name}: the lowered graph does not verify: {e:?}"));
            let mut rng = Rng(m as u64 + 17);
            let (data, params) = example_inputs(&g, &mut rng);
            let want = eval(&g, &data, &params);
            let before = g.len();
            let groups_before = fusion::groups(&g).len();
            let log = passes::optimize(&mut g);
            verify(&g).unwrap_or_else(|e| panic!("{name}: the optimized graph does not verify: {e:?}"));
            if let Err(e) = compare(&want, &eval(&g, &data, &params)) {
                panic!("{name}: {e}\n{}", circ::ir::print::text(&g, None));
            }
            check_groups(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
            let changed: Vec<&str> = log.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
            report.push_str(&format!(
                "{name:24} {before:4} nodes -> {:4}; fusion groups {groups_before:3} -> {:3}; changed by {changed:?}\n",
                g.len(),
                fusion::groups(&g).len()
            ));
        }
    }
    println!("{report}");
}
