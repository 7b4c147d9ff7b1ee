//! The interpreter's dense tensor: a shape and its elements in row-major order. Integer tensors
//! (labels) are held as reals with integer values.

use super::real::Real;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    /// Row-major: the last axis varies fastest.
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    /// A tensor from its shape and elements; `None` when their counts differ.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Option<Tensor<T>> {
        (count(&shape) == data.len()).then_some(Tensor { shape, data })
    }

    pub fn scalar(x: T) -> Tensor<T> {
        Tensor { shape: Vec::new(), data: vec![x] }
    }

    /// A tensor of `f64` values converted to `T`. Panics if the counts differ (for tests).
    pub fn from_f64(shape: &[usize], values: &[f64]) -> Tensor<T> {
        assert_eq!(count(shape), values.len(), "shape {shape:?} needs {} values", count(shape));
        Tensor { shape: shape.to_vec(), data: values.iter().map(|v| T::from_f64(*v)).collect() }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as `f64`, row-major.
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|x| x.to_f64()).collect()
    }

    /// The element at a multi-index. Panics when it is out of range.
    pub fn at(&self, index: &[usize]) -> T {
        assert_eq!(index.len(), self.rank(), "index {index:?} into shape {:?}", self.shape);
        let off = index.iter().zip(strides(&self.shape)).map(|(i, s)| i * s).sum::<usize>();
        self.data[off]
    }

    /// The only element of a one-element tensor (a scalar, or `[1, 1]`).
    pub fn item(&self) -> Option<T> {
        (self.data.len() == 1).then(|| self.data[0])
    }

    /// Whether every element is finite (no NaN, no ±∞).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }

    pub fn map(&self, f: impl Fn(T) -> T) -> Tensor<T> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|x| f(*x)).collect() }
    }
}

/// Number of elements of a shape (1 for a scalar).
pub fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides: how far apart consecutive entries of each axis lie.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The strides of `shape` read as if broadcast (numpy rules) to `out`: right-aligned, and 0 along
/// every axis where `shape` has size 1 or is missing. The caller has checked that it broadcasts.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len()).map(|k| if k < lead || shape[k - lead] == 1 { 0 } else { own[k - lead] }).collect()
}

/// The numpy broadcast of two concrete shapes, or `None` when they clash.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], k: usize| if k < n - s.len() { 1 } else { s[k - (n - s.len())] };
    (0..n)
        .map(|k| match (dim(a, k), dim(b, k)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Calls `f` at every multi-index of `shape`, in row-major order, with one flat offset per strided
/// view: `views[v]` holds view `v`'s stride along each axis of `shape`, `bases[v]` its first offset.
/// The offsets are kept up to date by addition, so a broadcast or transposed read costs no division.
pub fn for_each_offset(shape: &[usize], views: &[Vec<usize>], bases: &[usize], mut f: impl FnMut(&[usize])) {
    debug_assert!(views.iter().all(|v| v.len() == shape.len()) && views.len() == bases.len());
    let mut index = vec![0; shape.len()];
    let mut offsets = bases.to_vec();
    for _ in 0..count(shape) {
        f(&offsets);
        // Step the multi-index like an odometer, adjusting every offset with it.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            for (o, v) in offsets.iter_mut().zip(views) {
                *o += v[k];
            }
            if index[k] < shape[k] {
                break;
            }
            for (o, v) in offsets.iter_mut().zip(views) {
                *o -= v[k] * shape[k];
            }
            index[k] = 0;
        }
    }
}
