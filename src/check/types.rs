//! Tensor types of the checker: an element type and a shape whose dimensions are known numbers,
//! named symbolic sizes (such as the number of examples `N`), or unknown (inside a circuit checked
//! without concrete arguments). Broadcasting and matrix-product shape rules live here.

use std::fmt;

/// Index of a symbolic dimension in the checker's table of symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(u64),
    /// A size fixed at run time, the same wherever the same symbol appears (e.g. `N`).
    Sym(SymId),
    /// Not known while checking a circuit generically; agrees with anything.
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    Float,
    Int,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ty {
    pub elem: Elem,
    pub dims: Vec<Dim>,
}

impl Ty {
    pub fn float(dims: Vec<Dim>) -> Ty {
        Ty { elem: Elem::Float, dims }
    }

    pub fn scalar() -> Ty {
        Ty::float(Vec::new())
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements, when every dimension is known.
    pub fn known_len(&self) -> Option<u64> {
        self.dims.iter().try_fold(1u64, |acc, d| match d {
            Dim::Known(n) => acc.checked_mul(*n),
            _ => None,
        })
    }
}

/// Names of symbolic dimensions, for printing.
pub trait SymNames {
    fn sym_name(&self, s: SymId) -> &str;
}

pub struct ShowDim<'a, S: SymNames>(pub Dim, pub &'a S);
pub struct ShowTy<'a, S: SymNames>(pub &'a Ty, pub &'a S);

impl<S: SymNames> fmt::Display for ShowDim<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => write!(f, "{}", self.1.sym_name(s)),
            Dim::Any => write!(f, "?"),
        }
    }
}

impl<S: SymNames> fmt::Display for ShowTy<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.elem == Elem::Int {
            write!(f, "int")?;
        }
        write!(f, "[")?;
        for (i, d) in self.0.dims.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}", ShowDim(*d, self.1))?;
        }
        write!(f, "]")
    }
}

/// Whether two dimensions are the same size for certain (`Any` agrees with everything).
pub fn dims_agree(a: Dim, b: Dim) -> bool {
    a == b || a == Dim::Any || b == Dim::Any
}

/// The more informative of two agreeing dimensions.
pub fn dims_meet(a: Dim, b: Dim) -> Dim {
    if a == Dim::Any {
        b
    } else {
        a
    }
}

/// Numpy broadcasting. On failure returns the axis (counted from the right, 0 = last) that clashes.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, usize> {
    let n = a.len().max(b.len());
    let mut out = vec![Dim::Known(1); n];
    for k in 0..n {
        let da = if k < a.len() { a[a.len() - 1 - k] } else { Dim::Known(1) };
        let db = if k < b.len() { b[b.len() - 1 - k] } else { Dim::Known(1) };
        out[n - 1 - k] = if da == Dim::Known(1) {
            db
        } else if db == Dim::Known(1) || dims_agree(da, db) {
            dims_meet(da, db)
        } else {
            return Err(k);
        };
    }
    Ok(out)
}

/// Why a matrix product's shapes do not fit.
#[derive(Debug, PartialEq)]
pub enum MatMulError {
    /// A scalar operand: `@` needs at least one axis on each side.
    Scalar,
    /// The contracted dimensions differ: (left's last, right's contracted).
    Inner(Dim, Dim),
    /// The batch dimensions do not broadcast.
    Batch,
}

/// Numpy `matmul` shape rule: 1-D operands are promoted and the promoted axis removed again.
pub fn matmul(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, MatMulError> {
    if a.is_empty() || b.is_empty() {
        return Err(MatMulError::Scalar);
    }
    let ka = a[a.len() - 1];
    let kb = if b.len() == 1 { b[0] } else { b[b.len() - 2] };
    if !dims_agree(ka, kb) {
        return Err(MatMulError::Inner(ka, kb));
    }
    let a_batch = if a.len() > 2 { &a[..a.len() - 2] } else { &[][..] };
    let b_batch = if b.len() > 2 { &b[..b.len() - 2] } else { &[][..] };
    let mut out = broadcast(a_batch, b_batch).map_err(|_| MatMulError::Batch)?;
    if a.len() >= 2 {
        out.push(a[a.len() - 2]);
    }
    if b.len() >= 2 {
        out.push(b[b.len() - 1]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    const N: Dim = Dim::Sym(SymId(0));
    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[N, k(3)], &[k(3)]), Ok(vec![N, k(3)]));
        assert_eq!(broadcast(&[N, k(1)], &[k(4)]), Ok(vec![N, k(4)]));
        assert_eq!(broadcast(&[], &[k(2), k(3)]), Ok(vec![k(2), k(3)]));
        assert_eq!(broadcast(&[N, k(3)], &[k(4)]), Err(0));
        assert_eq!(broadcast(&[k(2), k(3)], &[k(5), k(3)]), Err(1));
        assert_eq!(broadcast(&[N], &[Dim::Any]), Ok(vec![N]));
    }

    #[test]
    fn matmul_follows_numpy() {
        assert_eq!(matmul(&[N, k(64)], &[k(64), k(10)]), Ok(vec![N, k(10)]));
        assert_eq!(matmul(&[k(64)], &[k(64)]), Ok(vec![]));
        assert_eq!(matmul(&[N, k(64)], &[k(64)]), Ok(vec![N]));
        assert_eq!(matmul(&[k(64)], &[k(64), k(3)]), Ok(vec![k(3)]));
        assert_eq!(matmul(&[k(5), N, k(2)], &[k(2), k(3)]), Ok(vec![k(5), N, k(3)]));
        assert_eq!(matmul(&[N, k(64)], &[k(32), k(10)]), Err(MatMulError::Inner(k(64), k(32))));
        assert_eq!(matmul(&[], &[k(2)]), Err(MatMulError::Scalar));
    }
}
