//! Graph passes. Each is its own module with `run(&mut Graph) -> bool` ("changed"); each leaves
//! every output's value unchanged, which tests check on the interpreter, and leaves no node that
//! no output uses, so the graph verifies after every pass.
//!
//! - `const_fold`: scalar ops on constants become one constant.
//! - `simplify`: exact algebraic identities (`x·1`, `−−x`, `log exp x`, transpose and reshape
//!   chains, `pow(x, 2)`, …), each rule with its reason.
//! - `cse`: equal nodes (same op, operands and type) become one.
//! - `dce`: nodes no output depends on go.
//! - `fusion`: not a rewrite: the elementwise groups a backend computes in one loop.
//!
//! [`optimize`] is the pipeline: a plain list of passes run to a fixed point.

pub mod const_fold;
pub mod cse;
pub mod dce;
pub mod fusion;
pub mod simplify;

use crate::ir::Graph;

/// A pass: its name (for reports and verifier failures) and its entry point.
pub type Pass = (&'static str, fn(&mut Graph) -> bool);

/// The optimization pipeline, in the order each round runs it.
pub const PIPELINE: &[Pass] =
    &[("const_fold", const_fold::run), ("simplify", simplify::run), ("cse", cse::run), ("dce", dce::run)];

/// Rounds of the pipeline before `optimize` stops even if a pass still changes the graph. Every
/// pass only ever shrinks the graph or makes an op cheaper, so a few rounds reach the fixed point.
pub const MAX_ROUNDS: usize = 10;

/// Runs [`PIPELINE`] until a whole round changes nothing (at most [`MAX_ROUNDS`] rounds) and
/// returns every pass run with whether it changed the graph. In debug builds the graph is verified
/// before the first pass and after each one; a failure is a bug in the pass (or in whatever built
/// the graph), not in user input, so it panics with the pass's name and the errors.
pub fn optimize(g: &mut Graph) -> Vec<(&'static str, bool)> {
    check(g, "the input of optimize");
    let mut log = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let mut any = false;
        for (name, pass) in PIPELINE {
            let changed = pass(g);
            check(g, name);
            log.push((*name, changed));
            any |= changed;
        }
        if !any {
            break;
        }
    }
    log
}

fn check(g: &Graph, after: &str) {
    if cfg!(debug_assertions) {
        if let Err(errs) = crate::ir::verify::verify(g) {
            panic!("the graph does not verify after {after}:\n  {}", errs.join("\n  "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::{Dim, Elem};
    use crate::ir::graph::{DataInfo, Node, Output};
    use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};
    use crate::ir::Op;

    #[test]
    fn the_pipeline_reaches_a_fixed_point_and_reports_each_pass() {
        // sum((x · (2 − 1)) + log(exp(x · 1)))  →  sum(x + x)
        let mut g = Graph::default();
        let s = vec![Dim::Known(3)];
        g.data.push(DataInfo {
            name: "x".into(),
            elem: Elem::Float,
            shape: s.clone(),
            source: DataSource::Columns(vec![]),
        });
        let add = |g: &mut Graph, op: Op, shape: &[Dim], xs: &[_]| {
            g.add(Node { op, elem: Elem::Float, shape: shape.to_vec(), span: None, label: None }, xs)
        };
        let x = add(&mut g, Op::Data(0), &s, &[]);
        let two = add(&mut g, Op::Const(2.0), &[], &[]);
        let one = add(&mut g, Op::Const(1.0), &[], &[]);
        let d = add(&mut g, Op::Binary(BinaryOp::Sub), &[], &[two, one]);
        let a = add(&mut g, Op::Binary(BinaryOp::Mul), &s, &[x, d]);
        let one2 = add(&mut g, Op::Const(1.0), &[], &[]);
        let b = add(&mut g, Op::Binary(BinaryOp::Mul), &s, &[x, one2]);
        let e = add(&mut g, Op::Unary(UnaryOp::Exp), &s, &[b]);
        let l = add(&mut g, Op::Unary(UnaryOp::Log), &s, &[e]);
        let t = add(&mut g, Op::Binary(BinaryOp::Add), &s, &[a, l]);
        let loss = add(&mut g, Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[], &[t]);
        g.outputs.push(Output { name: "loss".into(), node: loss });
        let log = optimize(&mut g);
        assert_eq!(g.len(), 3);
        assert_eq!(g.operands(t), vec![x, x]);
        assert_eq!(&log[..4], &[("const_fold", true), ("simplify", true), ("cse", false), ("dce", false)]);
        assert!(log[log.len() - 4..].iter().all(|(_, c)| !c));
        assert_eq!(log.len() % PIPELINE.len(), 0);
    }

    #[test]
    #[should_panic(expected = "does not verify after the input of optimize")]
    #[cfg(debug_assertions)]
    fn an_invalid_graph_is_a_bug_caught_before_any_pass() {
        let mut g = Graph::default();
        let c = g.add(
            Node { op: Op::Const(1.0), elem: Elem::Float, shape: vec![Dim::Known(2)], span: None, label: None },
            &[],
        );
        g.outputs.push(Output { name: "loss".into(), node: c });
        optimize(&mut g);
    }
}
