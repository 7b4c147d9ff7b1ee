//! The scalar functions generated code calls for the ops Cranelift has no instruction for (exp,
//! log, tanh, sigmoid, softplus, pow), registered as JIT symbols under [`SYMBOLS`]' names. They
//! follow the op semantics of `ir/op.rs` in `f32`, written here (not borrowed from the
//! interpreter, which must stay an independent check).
//!
//! Next optimization: vector polynomial versions in CLIF (`exp` and `log` by range reduction, the
//! others from them), instead of four scalar calls per `f32x4`.

extern "C" fn circ_exp(x: f32) -> f32 {
    x.exp()
}

extern "C" fn circ_log(x: f32) -> f32 {
    x.ln()
}

extern "C" fn circ_tanh(x: f32) -> f32 {
    x.tanh()
}

/// `1/(1 + e^−x)`, taking `exp` of a non-positive number only, so it never overflows.
extern "C" fn circ_sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `max(x, 0) + log1p(e^−|x|)`: exact for large |x|; NaN propagates.
extern "C" fn circ_softplus(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

extern "C" fn circ_pow(x: f32, y: f32) -> f32 {
    x.powf(y)
}

/// A scalar function the generated code may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libm {
    Exp,
    Log,
    Tanh,
    Sigmoid,
    Softplus,
    Pow,
}

impl Libm {
    pub const ALL: [Libm; 6] = [Libm::Exp, Libm::Log, Libm::Tanh, Libm::Sigmoid, Libm::Softplus, Libm::Pow];

    pub fn name(self) -> &'static str {
        match self {
            Libm::Exp => "circ_exp",
            Libm::Log => "circ_log",
            Libm::Tanh => "circ_tanh",
            Libm::Sigmoid => "circ_sigmoid",
            Libm::Softplus => "circ_softplus",
            Libm::Pow => "circ_pow",
        }
    }

    /// Number of `f32` arguments (the result is one `f32`).
    pub fn arity(self) -> usize {
        if self == Libm::Pow {
            2
        } else {
            1
        }
    }

    pub fn address(self) -> *const u8 {
        match self {
            Libm::Exp => circ_exp as extern "C" fn(f32) -> f32 as *const u8,
            Libm::Log => circ_log as extern "C" fn(f32) -> f32 as *const u8,
            Libm::Tanh => circ_tanh as extern "C" fn(f32) -> f32 as *const u8,
            Libm::Sigmoid => circ_sigmoid as extern "C" fn(f32) -> f32 as *const u8,
            Libm::Softplus => circ_softplus as extern "C" fn(f32) -> f32 as *const u8,
            Libm::Pow => circ_pow as extern "C" fn(f32, f32) -> f32 as *const u8,
        }
    }
}
