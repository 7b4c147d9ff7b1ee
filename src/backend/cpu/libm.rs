//! The scalar functions generated code calls for the ops it has no inline code for (`pow`),
//! registered as JIT symbols under [`Libm::name`]. They follow the op semantics of `ir/op.rs` in
//! `f32`, written here (not borrowed from the interpreter, which must stay an independent check).
//! `exp log tanh sigmoid softplus` are inline vector code instead (`math.rs`).

extern "C" fn circ_pow(x: f32, y: f32) -> f32 {
    x.powf(y)
}

/// A scalar function the generated code may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libm {
    Pow,
}

impl Libm {
    pub const ALL: [Libm; 1] = [Libm::Pow];

    pub fn name(self) -> &'static str {
        match self {
            Libm::Pow => "circ_pow",
        }
    }

    /// Number of `f32` arguments (the result is one `f32`).
    pub fn arity(self) -> usize {
        match self {
            Libm::Pow => 2,
        }
    }

    pub fn address(self) -> *const u8 {
        match self {
            Libm::Pow => circ_pow as extern "C" fn(f32, f32) -> f32 as *const u8,
        }
    }
}
