//! The shape rule of every IR op: what element type and shape a node must have given its
//! operands. The verifier compares each node against it; passes use it to build new nodes.

use super::op::{Op, ReduceOp};
use crate::check::checked::Slice;
use crate::check::types::{broadcast, matmul, Dim, Elem};

/// The element type and shape an op yields on the given operands. `current` is the node's own
/// shape, which is the target of a `Reshape` (only its element count is checked).
pub fn infer(op: &Op, operands: &[(Elem, &[Dim])], current: &[Dim]) -> Result<(Elem, Vec<Dim>), String> {
    let real = |i: usize| -> Result<&[Dim], String> {
        match operands.get(i) {
            Some((Elem::Float, s)) => Ok(*s),
            Some((Elem::Int, _)) => Err(format!("operand {i} is an integer tensor")),
            None => Err(format!("operand {i} is missing")),
        }
    };
    let f = |s: Vec<Dim>| Ok((Elem::Float, s));
    match op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) => Err("leaves have no shape rule".into()),
        Op::Const(_) => f(vec![]),
        Op::Unary(_) => f(real(0)?.to_vec()),
        Op::Binary(_) => broadcast(real(0)?, real(1)?).map_or_else(|_| Err("operands do not broadcast".into()), f),
        Op::MatMul => matmul(real(0)?, real(1)?).map_or_else(|e| Err(format!("matmul: {e:?}")), f),
        Op::Reduce { f: rf, axes, keepdims } => {
            let x = real(0)?;
            if axes.iter().any(|a| *a >= x.len()) || axes.windows(2).any(|w| w[0] >= w[1]) {
                return Err("reduction axes out of range or not sorted".into());
            }
            if *rf == ReduceOp::Max && axes.iter().any(|a| x[*a] == Dim::Known(0)) {
                return Err("max over an empty axis".into());
            }
            f(reduced(x, axes, *keepdims))
        }
        Op::LogSumExp { axis, keepdims } => {
            let x = real(0)?;
            if *axis >= x.len() {
                return Err("axis out of range".into());
            }
            f(reduced(x, &[*axis], *keepdims))
        }
        Op::Reshape => {
            let x = real(0)?;
            if same_count(x, current) {
                f(current.to_vec())
            } else {
                Err("reshape changes the number of elements".into())
            }
        }
        Op::Transpose { perm } => {
            let x = real(0)?;
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..x.len()).collect::<Vec<_>>() {
                return Err("not a permutation of the axes".into());
            }
            f(perm.iter().map(|p| x[*p]).collect())
        }
        Op::Concat { axis } => {
            let first = real(0)?;
            if *axis >= first.len() {
                return Err("axis out of range".into());
            }
            let mut out = first.to_vec();
            for i in 1..operands.len() {
                let s = real(i)?;
                if s.len() != first.len() || s.iter().zip(first).enumerate().any(|(k, (a, b))| k != *axis && a != b) {
                    return Err(format!("operand {i} does not fit"));
                }
                out[*axis] = match (out[*axis], s[*axis]) {
                    (Dim::Known(a), Dim::Known(b)) => Dim::Known(a + b),
                    _ => return Err("concat along a symbolic axis".into()),
                };
            }
            f(out)
        }
        Op::Slice { items } => {
            let (elem, x) = operands.first().map(|(e, s)| (*e, *s)).ok_or("operand 0 is missing")?;
            if items.len() > x.len() {
                return Err("more indices than axes".into());
            }
            let mut out = Vec::new();
            for (item, d) in items.iter().zip(x) {
                match (item, d) {
                    (Slice::At(_), _) => {}
                    (Slice::Range { start, end: Some(e) }, _) => out.push(Dim::Known((e - start) as u64)),
                    (Slice::Range { start, end: None }, Dim::Known(n)) => out.push(Dim::Known(*n - *start as u64)),
                    (Slice::Range { start: 0, end: None }, other) => out.push(*other),
                    _ => return Err("open slice of a symbolic axis".into()),
                }
            }
            out.extend_from_slice(&x[items.len()..]);
            Ok((elem, out))
        }
        Op::KMax { .. } => match real(0)? {
            [] => Err("kmax of a scalar".into()),
            x => f(x.to_vec()),
        },
        Op::OneHot { classes } => match operands.first() {
            Some((Elem::Int, s)) => {
                let mut out = s.to_vec();
                out.push(Dim::Known(*classes));
                f(out)
            }
            _ => Err("one_hot needs an integer operand".into()),
        },
        Op::Expand => {
            let x = real(0)?;
            match broadcast(x, current) {
                Ok(b) if b == current => f(current.to_vec()),
                _ => Err("the operand does not broadcast to the node's shape".into()),
            }
        }
        Op::Embed { items } => {
            let g = real(0)?;
            // The node's shape, sliced by `items`, must give the operand's shape.
            let sliced = infer(&Op::Slice { items: items.clone() }, &[(Elem::Float, current)], &[])?;
            if sliced.1 == g {
                f(current.to_vec())
            } else {
                Err("the operand is not the shape of this slice of the node".into())
            }
        }
        Op::KMaxMask { .. } => match real(0)? {
            [] => Err("kmax of a scalar".into()),
            x => f(x.to_vec()),
        },
        Op::Cast => match operands.first() {
            Some((Elem::Int, s)) => f(s.to_vec()),
            _ => Err("cast needs an integer operand".into()),
        },
    }
}

fn reduced(x: &[Dim], axes: &[usize], keepdims: bool) -> Vec<Dim> {
    x.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(*d),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

/// Whether two shapes hold the same number of elements for every value of the symbols.
pub fn same_count(a: &[Dim], b: &[Dim]) -> bool {
    let split = |s: &[Dim]| {
        let mut k = 1u64;
        let mut syms: Vec<u32> = Vec::new();
        for d in s {
            match d {
                Dim::Known(n) => k = k.saturating_mul(*n),
                Dim::Sym(x) => syms.push(x.0),
                Dim::Any => syms.push(u32::MAX),
            }
        }
        syms.sort_unstable();
        (k, syms)
    };
    split(a) == split(b)
}
