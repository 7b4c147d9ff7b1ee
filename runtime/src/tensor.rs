//! A dense, row-major f32 tensor: the unit of data exchanged with the runtime.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorError {
    /// The data length does not equal the product of the shape.
    LengthMismatch { shape: Vec<usize>, len: usize },
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::LengthMismatch { shape, len } => {
                write!(f, "a tensor of shape {shape:?} needs {} values, got {len}", shape.iter().product::<usize>())
            }
        }
    }
}

impl std::error::Error for TensorError {}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, TensorError> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(TensorError::LengthMismatch { shape, len: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor { shape, data: vec![0.0; n] }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Row-major offset of a multi-index, or `None` when it is out of bounds.
    pub fn offset(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut off = 0;
        for (&i, &n) in index.iter().zip(&self.shape) {
            if i >= n {
                return None;
            }
            off = off * n + i;
        }
        Some(off)
    }

    pub fn get(&self, index: &[usize]) -> Option<f32> {
        self.offset(index).map(|o| self.data[o])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length() {
        let e = Tensor::new(vec![2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(e.to_string(), "a tensor of shape [2, 3] needs 6 values, got 5");
    }

    #[test]
    fn indexes_row_major() {
        let t = Tensor::new(vec![2, 3], (0..6).map(|x| x as f32).collect()).unwrap();
        assert_eq!(t.get(&[1, 0]), Some(3.0));
        assert_eq!(t.get(&[0, 2]), Some(2.0));
        assert_eq!(t.get(&[2, 0]), None);
        assert_eq!(t.get(&[0]), None);
        assert_eq!(Tensor::zeros(vec![]).get(&[]), Some(0.0));
    }
}
