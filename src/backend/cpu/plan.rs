//! The loop plan of one elementwise group: its iteration space with the axes that every operand
//! reads alike merged ("collapsed"), and how each input and the reduction epilogue are indexed.
//! Pure analysis of the graph, nothing Cranelift-specific: the code generator reads it.
//!
//! An input of shape `s` broadcast into the group's space `S` (numpy rules, axes aligned on the
//! right) *varies* along axis `k` when its size there is `S[k]`, and is *broadcast* there when its
//! size is 1 or the axis is missing. Axes of known size 1 are dropped; then neighbouring axes are
//! merged whenever every operand varies along both or along neither. So `[N, o] + [o]` becomes two
//! axes (the bias varies along the inner one only), `[N, o] · [N, 1]` two axes (the per-row value
//! along the outer one), and `[B, N, o] + [B, N, o]` one axis. Reading an operand is then a
//! per-axis stride: the product of the later axes' extents it varies along, or 0.

use crate::check::types::Dim;
use crate::ir::op::ReduceOp;
use crate::ir::{Graph, NodeId, Op};
use crate::passes::fusion::FusionGroup;

/// How the kernel reads one input of the group.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// A `Const` node: embedded as an immediate, its buffer pointer is never read.
    Const(f64),
    /// Read from its buffer. `vary[j]`: whether it varies along collapsed axis `j`; all false is
    /// a scalar (or an all-ones shape), loaded once before the loops.
    Strided { vary: Vec<bool> },
}

/// The reduction ending the group: the loop accumulates its operand into the output buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Epilogue {
    pub node: NodeId,
    pub f: ReduceOp,
    /// The member whose values are accumulated (it is written nowhere).
    pub operand: NodeId,
    /// Whether the result varies along collapsed axis `j` (false: a reduced axis).
    pub vary: Vec<bool>,
    /// The reduced axes of the group's space.
    pub axes: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The group's iteration space, as the graph states it.
    pub shape: Vec<Dim>,
    /// The collapsed axes, outermost first, each the original axes it merges (empty only for the
    /// single axis of extent 1 a scalar space gets). Never empty itself.
    pub axes: Vec<Vec<usize>>,
    /// One per `FusionGroup::inputs`, in order.
    pub inputs: Vec<Access>,
    /// Whether input `i` varies along each *original* axis (for checking buffer lengths).
    pub input_vary: Vec<Vec<bool>>,
    pub epilogue: Option<Epilogue>,
}

impl Plan {
    pub fn new(g: &Graph, grp: &FusionGroup) -> Result<Plan, String> {
        let shape = grp.shape.clone();
        let rank = shape.len();
        if let Some(k) = shape.iter().position(|d| matches!(d, Dim::Any)) {
            return Err(format!("axis {k} of the group's space has an unknown size"));
        }
        for n in &grp.nodes {
            let op = &g.node(*n).op;
            let ok = if Some(*n) == grp.epilogue { matches!(op, Op::Reduce { .. }) } else { op.is_elementwise() };
            if !ok {
                return Err(format!("{n} ({}) is not an elementwise op", op.name()));
            }
        }
        // Per original axis: does each input vary along it?
        let mut input_vary = Vec::with_capacity(grp.inputs.len());
        for &i in &grp.inputs {
            let s = &g.node(i).shape;
            if s.len() > rank {
                return Err(format!("input {i} has rank {} above the group's {rank}", s.len()));
            }
            let lead = rank - s.len();
            let mut vary = vec![false; rank];
            for k in lead..rank {
                let d = s[k - lead];
                if d == shape[k] {
                    vary[k] = d != Dim::Known(1);
                } else if d != Dim::Known(1) {
                    return Err(format!("input {i} has size {d:?} on axis {k}, the space {:?}", shape[k]));
                }
            }
            input_vary.push(vary);
        }
        let epilogue_axes = match grp.epilogue.map(|r| &g.node(r).op) {
            Some(Op::Reduce { f, axes, .. }) => Some((*f, axes.clone())),
            Some(op) => return Err(format!("epilogue {} is not a reduction", op.name())),
            None => None,
        };
        // Drop known-1 axes, then merge neighbours that every operand reads alike.
        let kept: Vec<usize> = (0..rank).filter(|k| shape[*k] != Dim::Known(1)).collect();
        let pattern = |k: usize| -> Vec<bool> {
            let mut p: Vec<bool> = input_vary.iter().map(|v| v[k]).collect();
            if let Some((_, axes)) = &epilogue_axes {
                p.push(!axes.contains(&k));
            }
            p
        };
        let mut axes: Vec<Vec<usize>> = Vec::new();
        for &k in &kept {
            match axes.last_mut() {
                Some(last) if pattern(last[0]) == pattern(k) => last.push(k),
                _ => axes.push(vec![k]),
            }
        }
        if axes.is_empty() {
            axes.push(Vec::new());
        }
        let collapsed = |vary: &dyn Fn(usize) -> bool| -> Vec<bool> {
            axes.iter().map(|a| a.first().is_some_and(|k| vary(*k))).collect()
        };
        let inputs = grp
            .inputs
            .iter()
            .zip(&input_vary)
            .map(|(i, v)| match g.node(*i).op {
                Op::Const(c) => Access::Const(c),
                _ => Access::Strided { vary: collapsed(&|k| v[k]) },
            })
            .collect();
        let epilogue = match (grp.epilogue, epilogue_axes) {
            (Some(node), Some((f, raxes))) => {
                let operand = g.operands(node)[0];
                if g.node(operand).shape != shape {
                    return Err(format!("epilogue {node} reduces a value outside the group's space"));
                }
                Some(Epilogue { node, f, operand, vary: collapsed(&|k| !raxes.contains(&k)), axes: raxes })
            }
            _ => None,
        };
        Ok(Plan { shape, axes, inputs, input_vary, epilogue })
    }

    /// The concrete sizes of the original axes, checked against the known ones.
    pub fn check_dims(&self, dims: &[usize]) -> Result<(), String> {
        if dims.len() != self.shape.len() {
            return Err(format!("{} sizes given for a space of rank {}", dims.len(), self.shape.len()));
        }
        for (k, (d, n)) in self.shape.iter().zip(dims).enumerate() {
            if let Dim::Known(m) = d {
                if *m != *n as u64 {
                    return Err(format!("axis {k} has size {m}, {n} given"));
                }
            }
        }
        Ok(())
    }

    /// The number of elements input `i` holds when the space has sizes `dims`.
    pub fn input_len(&self, i: usize, dims: &[usize]) -> usize {
        self.input_vary[i].iter().zip(dims).filter(|(v, _)| **v).map(|(_, d)| *d).product()
    }

    /// The number of elements of the space.
    pub fn space_len(dims: &[usize]) -> usize {
        dims.iter().product()
    }

    /// The number of elements of the epilogue's result.
    pub fn epilogue_len(&self, dims: &[usize]) -> usize {
        let Some(e) = &self.epilogue else { return 0 };
        self.axes
            .iter()
            .zip(&e.vary)
            .filter(|(_, v)| **v)
            .map(|(a, _)| a.iter().map(|k| dims[*k]).product::<usize>())
            .product()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::{Elem, SymId};
    use crate::ir::graph::{DataInfo, Output};
    use crate::ir::op::{BinaryOp, UnaryOp};
    use crate::passes::fusion::groups;

    const N: Dim = Dim::Sym(SymId(0));

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    fn data(g: &mut Graph, shape: Vec<Dim>) -> NodeId {
        let i = g.data.len();
        g.data.push(DataInfo { name: format!("x{i}"), elem: Elem::Float, shape, source: DataSource::Columns(vec![]) });
        g.push(Op::Data(i), &[], None, None)
    }

    /// The plan of `x ⊕ y` (then `exp`, made an output), for `x` and `y` of the given shapes.
    fn plan_of(a: Vec<Dim>, b: Vec<Dim>, reduce: Option<Vec<usize>>) -> Plan {
        let mut g = Graph::default();
        g.syms = vec!["N".into()];
        let x = data(&mut g, a);
        let y = data(&mut g, b);
        let s = g.binary(BinaryOp::Add, x, y, None);
        let e = g.unary(UnaryOp::Exp, s, None);
        let out = match reduce {
            Some(axes) => g.push(Op::Reduce { f: ReduceOp::Sum, axes, keepdims: false }, &[e], None, None),
            None => e,
        };
        g.outputs.push(Output { name: "loss".into(), node: out });
        let gs = groups(&g);
        assert_eq!(gs.len(), 1);
        Plan::new(&g, &gs[0]).unwrap()
    }

    fn vary(p: &Plan, i: usize) -> Vec<bool> {
        match &p.inputs[i] {
            Access::Strided { vary } => vary.clone(),
            Access::Const(_) => panic!("a constant"),
        }
    }

    #[test]
    fn a_bias_row_varies_along_the_inner_axis_only() {
        let p = plan_of(vec![N, k(5)], vec![k(5)], None);
        assert_eq!(p.axes, vec![vec![0], vec![1]]);
        assert_eq!((vary(&p, 0), vary(&p, 1)), (vec![true, true], vec![false, true]));
        assert_eq!(p.input_len(1, &[7, 5]), 5);
    }

    #[test]
    fn same_shapes_collapse_to_one_axis() {
        let p = plan_of(vec![k(2), N, k(5)], vec![k(2), N, k(5)], None);
        assert_eq!(p.axes, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_per_row_value_varies_along_the_outer_axis_only() {
        let p = plan_of(vec![N, k(5)], vec![N, k(1)], None);
        assert_eq!(p.axes, vec![vec![0], vec![1]]);
        assert_eq!(vary(&p, 1), vec![true, false]);
    }

    #[test]
    fn known_ones_are_dropped_and_a_middle_axis_may_broadcast() {
        let p = plan_of(vec![k(3), k(1), k(4)], vec![k(4)], None);
        assert_eq!(p.axes, vec![vec![0], vec![2]]);
        let p = plan_of(vec![k(2), k(3), k(4)], vec![k(2), k(1), k(4)], None);
        assert_eq!(p.axes, vec![vec![0], vec![1], vec![2]]);
        assert_eq!(vary(&p, 1), vec![true, false, true]);
    }

    #[test]
    fn a_scalar_space_has_one_axis_of_extent_one() {
        let p = plan_of(vec![], vec![], None);
        assert_eq!(p.axes, vec![Vec::<usize>::new()]);
        assert_eq!(vary(&p, 0), vec![false]);
    }

    #[test]
    fn an_epilogue_splits_axes_it_reduces_differently() {
        let p = plan_of(vec![N, k(5)], vec![N, k(5)], Some(vec![1]));
        assert_eq!(p.axes, vec![vec![0], vec![1]]);
        assert_eq!(p.epilogue.as_ref().map(|e| e.vary.clone()), Some(vec![true, false]));
        assert_eq!(p.epilogue_len(&[7, 5]), 7);
    }
}
