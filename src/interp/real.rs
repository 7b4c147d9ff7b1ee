//! The element types the interpreter computes in: `f32` and `f64`, behind one small trait so every
//! kernel is written once.

use std::fmt::{Debug, Display};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A real number type the interpreter can run a graph in.
///
/// `max` propagates NaN (unlike `f64::max`, which drops it), so a NaN anywhere in a reduction or a
/// ReLU shows up in the result, where [`super::first_non_finite`] can find it.
pub trait Real:
    Copy
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
    const NAN: Self;
    /// The type's name, for messages (`f32`, `f64`).
    const NAME: &'static str;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    /// `ln(1 + x)`, accurate for small `x`.
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, y: Self) -> Self;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;

    /// The larger of two numbers; NaN if either is NaN.
    fn max(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            Self::NAN
        } else if other > self {
            other
        } else {
            self
        }
    }
}

macro_rules! real {
    ($t:ident) => {
        impl Real for $t {
            const ZERO: $t = 0.0;
            const ONE: $t = 1.0;
            const INFINITY: $t = $t::INFINITY;
            const NEG_INFINITY: $t = $t::NEG_INFINITY;
            const NAN: $t = $t::NAN;
            const NAME: &'static str = stringify!($t);

            fn from_f64(x: f64) -> $t {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> $t {
                $t::exp(self)
            }
            fn ln(self) -> $t {
                $t::ln(self)
            }
            fn ln_1p(self) -> $t {
                $t::ln_1p(self)
            }
            fn sqrt(self) -> $t {
                $t::sqrt(self)
            }
            fn tanh(self) -> $t {
                $t::tanh(self)
            }
            fn abs(self) -> $t {
                $t::abs(self)
            }
            fn powf(self, y: $t) -> $t {
                $t::powf(self, y)
            }
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
        }
    };
}

real!(f32);
real!(f64);
