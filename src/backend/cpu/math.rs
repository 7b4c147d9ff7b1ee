//! `exp log tanh sigmoid softplus` as inline `f32x4` CLIF: range reduction, a polynomial and
//! integer operations on the exponent bits, no calls. The loop body runs them on four lanes, and on
//! one lane by `splat` and `extractlane 0`, so the scalar tail rounds exactly as the vector lanes.
//!
//! Accuracy against the f64 functions, in units in the last place of the correctly rounded
//! result, the worst over all 2³² inputs (`exhaustive` in `tests/backend_cpu_math.rs`), with
//! `fma` on and off (relative error: the worst over normal results):
//!
//! | function   | worst ulp | relative | how                                                 |
//! |------------|-----------|----------|-----------------------------------------------------|
//! | `exp`      | 0.50      | 6.0e-8   | in f64: n·ln 2 + r, degree-8 polynomial, × 2ⁿ; rounded once |
//! | `log`      | 0.85      | 8.1e-8   | 2ᵏ·m, m ∈ [√½, √2), degree-11 polynomial (Cephes `logf`) |
//! | `tanh`     | 1.51      | 1.5e-7   | odd polynomial below \|x\| = 0.625, else (1 − e)/(1 + e), e = e^(−2\|x\|) |
//! | `sigmoid`  | 2.40      | 1.8e-7   | 1/(1 + e) or e/(1 + e), e = e^(−\|x\|): e's error, then two roundings |
//! | `softplus` | 1.99      | 1.8e-7   | max(x, 0) + log1p(e), e = e^(−\|x\|), log1p by a corrected log |
//!
//! `exp` is in f64 to round as the interpreter's `f32::exp` does (see [`Math::exp_rounded`]);
//! the others take e from an f32 `exp` (1.01 ulp, Cephes `expf`), cheaper, as their own roundings
//! dominate. Rust's `f32::tanh`, for scale, reaches 2.14 ulp.
//!
//! Special values: `exp` is +∞ from 88.72284 up and 0 below −103.97208, subnormal results
//! correctly rounded; `log(±0) = −∞`, `log(x < 0) = NaN`, `log(+∞) = +∞`, subnormal inputs
//! scaled by 2²³ first; NaN gives NaN everywhere; `tanh(±∞) = ±1` and keeps the sign of zero.

// Coefficients are written as published (Cephes), or with every digit of their f64 fit.
#![allow(clippy::excessive_precision)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

/// `exp`'s argument is clamped to this range first: beyond it the result is +∞ or 0 anyway, and
/// n = round(x/ln 2) stays in [−150, 128].
const EXP_HI: f32 = 89.0;
const EXP_LO: f32 = -104.0;

/// 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer, held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// ln 2 as `LN2_HI + LN2_LO`, `LN2_HI` with 9 significant bits so `n·LN2_HI` is exact (Cody–Waite).
const LN2_HI: f32 = 0.693_359_375;
const LN2_LO: f32 = -2.121_944_4e-4;

/// 1.5·2⁵²: the same trick in f64.
const ROUND_F64: f64 = 6_755_399_441_055_744.0;

/// e^r on |r| ≤ ln2/2 in f64, degree 8, highest degree first: a Chebyshev fit (mpmath
/// `chebyfit`), relative error 8e-13, far below an f32 rounding.
const EXP_F64_P: [f64; 9] = [
    2.487_616_445_358_005e-5,
    1.991_586_735_797_2e-4,
    1.388_882_167_685_394_1e-3,
    8.333_266_097_172_774e-3,
    4.166_666_689_096_088_6e-2,
    1.666_666_689_104_966_4e-1,
    4.999_999_999_979_793e-1,
    9.999_999_999_797_847e-1,
    1.0,
];

/// e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2 (Cephes `expf`), highest degree first.
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1];

/// log(1 + f) ≈ f − f²/2 + f³·P(f) on f ∈ [√½ − 1, √2 − 1) (Cephes `logf`), highest degree first.
const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_5e-1,
    -2.499_999_4e-1,
    3.333_333_1e-1,
];

/// tanh(x) ≈ x + x³·P(x²) on |x| < 0.625 (Cephes `tanhf`), highest degree first.
const TANH_P: [f32; 5] = [-5.704_988_7e-3, 2.063_908_9e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328_2e-1];

/// Below this |x|, `tanh` uses its polynomial: (1 − e)/(1 + e) would cancel.
const TANH_SMALL: f32 = 0.625;

/// Writes `f32x4` math with `b`; `fma` contracts the polynomials' `a·b + c`.
pub(super) struct Math<'a, 'f> {
    pub(super) b: &'a mut FunctionBuilder<'f>,
    pub(super) fma: bool,
}

impl Math<'_, '_> {
    fn splat(&mut self, c: f32) -> Value {
        let s = self.b.ins().f32const(c);
        self.b.ins().splat(types::F32X4, s)
    }

    fn splat_f64(&mut self, c: f64) -> Value {
        let s = self.b.ins().f64const(c);
        self.b.ins().splat(types::F64X2, s)
    }

    fn splat_int(&mut self, c: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, c as i64);
        self.b.ins().splat(types::I32X4, s)
    }

    /// `x + c` on `i32x4` (the `_imm` builders splat nothing).
    fn add_int(&mut self, x: Value, c: i32) -> Value {
        let c = self.splat_int(c);
        self.b.ins().iadd(x, c)
    }

    fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// `Σ p[i]·x^(len−1−i)` by Horner's rule.
    fn poly(&mut self, x: Value, p: &[f32]) -> Value {
        let mut acc = self.splat(p[0]);
        for c in &p[1..] {
            let c = self.splat(*c);
            acc = self.mul_add(acc, x, c);
        }
        acc
    }

    fn as_int(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(types::I32X4, MemFlagsData::new(), x)
    }

    fn as_float(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(types::F32X4, MemFlagsData::new(), x)
    }

    /// All ones in the lanes where `a cc b`, as `f32x4` (for `bitselect`).
    fn mask(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        let m = self.b.ins().fcmp(cc, a, b);
        self.as_float(m)
    }

    /// `c < x ? c : x`, kept as written so that it lowers to one `minps` (NaN x stays NaN).
    fn min_const(&mut self, x: Value, c: f32) -> Value {
        let c = self.splat(c);
        let m = self.mask(FloatCC::LessThan, c, x);
        self.b.ins().bitselect(m, c, x)
    }

    /// `x < c ? c : x`: one `maxps` (NaN x stays NaN).
    fn max_const(&mut self, x: Value, c: f32) -> Value {
        let c = self.splat(c);
        let m = self.mask(FloatCC::LessThan, x, c);
        self.b.ins().bitselect(m, c, x)
    }

    /// e^x for the `exp` op, in f64 (two `f64x2` halves, error < 10⁻¹²) rounded once to f32: so
    /// it has the bits of the interpreter's `f32::exp` (glibc's `expf`, 0.502 ulp) for all but
    /// 4·10⁻⁵ of the floats (results a hair from a midpoint), and differential tests stay exact
    /// where a result cancels (one ulp of a term of 2 is 10⁻³ of a gradient of 3·10⁻⁴; the f32
    /// version below, 1.01 ulp, made `executors`'s random graphs fail there). Costs 1.5 times
    /// the f32 version. The conversion to f32 overflows, underflows and rounds subnormals.
    /// `one_lane`: only lane 0 is wanted (the scalar tail), so the upper half is not computed.
    pub(super) fn exp_rounded(&mut self, x: Value, one_lane: bool) -> Value {
        let x = self.min_const(x, EXP_HI);
        let x = self.max_const(x, EXP_LO);
        let lo = self.b.ins().fvpromote_low(x);
        if one_lane {
            let lo = self.exp_f64(lo);
            return self.b.ins().fvdemote(lo);
        }
        // Lanes 2, 3 down to 0, 1.
        let high = self.shuffle(x, x, [2, 3, 2, 3]);
        let hi = self.b.ins().fvpromote_low(high);
        let lo = self.exp_f64(lo);
        let hi = self.exp_f64(hi);
        let lo = self.b.ins().fvdemote(lo);
        let hi = self.b.ins().fvdemote(hi);
        self.shuffle(lo, hi, [0, 1, 4, 5])
    }

    /// `f32x4` lanes `[a, b][k]` for the four indices `k` (0–3 from `a`, 4–7 from `b`).
    fn shuffle(&mut self, a: Value, b: Value, k: [u8; 4]) -> Value {
        let bytes: Vec<u8> = k.iter().flat_map(|k| (0..4).map(move |i| 4 * k + i)).collect();
        let mask = self.b.func.dfg.immediates.push(ConstantData::from(bytes));
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let a = self.b.ins().bitcast(types::I8X16, little, a);
        let b = self.b.ins().bitcast(types::I8X16, little, b);
        let r = self.b.ins().shuffle(a, b, mask);
        self.b.ins().bitcast(types::F32X4, little, r)
    }

    /// e^x on `f64x2`, x ∈ [−104, 89] or NaN. n·ln 2 with n ≤ 150 in one f64 constant is off by
    /// < 2⁻⁴⁵, so no Cody–Waite split is needed here; 2ⁿ is a normal f64, so one factor.
    fn exp_f64(&mut self, x: Value) -> Value {
        let (log2e, round) = (self.splat_f64(std::f64::consts::LOG2_E), self.splat_f64(ROUND_F64));
        let t = self.mul_add(x, log2e, round);
        let nf = self.b.ins().fsub(t, round);
        let neg_n = self.b.ins().fneg(nf);
        let ln2 = self.splat_f64(std::f64::consts::LN_2);
        let r = self.mul_add(neg_n, ln2, x);
        let mut p = self.splat_f64(EXP_F64_P[0]);
        for c in &EXP_F64_P[1..] {
            let c = self.splat_f64(*c);
            p = self.mul_add(p, r, c);
        }
        // 2ⁿ: n sits in t's low bits (ROUND_F64's low 12 bits are 0), so (t + 1023) << 52 is it.
        let tb = self.b.ins().bitcast(types::I64X2, MemFlagsData::new(), t);
        let bias = self.b.ins().iconst(types::I64, 1023);
        let bias = self.b.ins().splat(types::I64X2, bias);
        let e = self.b.ins().iadd(tb, bias);
        let e = self.b.ins().ishl_imm_s(e, 52);
        let s = self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), e);
        self.b.ins().fmul(p, s)
    }

    /// e^x for x ≤ 0 (or NaN), in f32: within 1.01 ulp, 1.5 times as fast as [`Math::exp_rounded`],
    /// for `tanh sigmoid softplus`, whose other roundings dominate their error anyway.
    fn exp_non_positive(&mut self, x: Value) -> Value {
        let x = self.max_const(x, EXP_LO);
        // n = round(x / ln 2), as a float and as the integer in the low bits of `t`.
        let (log2e, round) = (self.splat(std::f32::consts::LOG2_E), self.splat(ROUND));
        let t = self.mul_add(x, log2e, round);
        let nf = self.b.ins().fsub(t, round);
        let ti = self.as_int(t);
        let n = self.add_int(ti, -(ROUND.to_bits() as i32));
        // r = x − n·ln 2, |r| ≤ ln2/2 (plus rounding).
        let neg_n = self.b.ins().fneg(nf);
        let (hi, lo) = (self.splat(LN2_HI), self.splat(LN2_LO));
        let r = self.mul_add(neg_n, hi, x);
        let r = self.mul_add(neg_n, lo, r);
        // e^r = 1 + (r + r²·P(r)).
        let p = self.poly(r, &EXP_P);
        let r2 = self.b.ins().fmul(r, r);
        let q = self.mul_add(p, r2, r);
        let one = self.splat(1.0);
        let y = self.b.ins().fadd(q, one);
        // × 2ⁿ as 2^(n/2)·2^(n − n/2): each factor a normal float for n ∈ [−150, 0], so
        // subnormal results round once.
        let n1 = self.b.ins().sshr_imm_s(n, 1);
        let n2 = self.b.ins().isub(n, n1);
        let s1 = self.pow2(n1);
        let s2 = self.pow2(n2);
        let y = self.b.ins().fmul(y, s1);
        self.b.ins().fmul(y, s2)
    }

    /// 2ⁿ for n in the normal exponent range, built in the exponent bits.
    fn pow2(&mut self, n: Value) -> Value {
        let biased = self.add_int(n, 127);
        let bits = self.b.ins().ishl_imm_s(biased, 23);
        self.as_float(bits)
    }

    /// ln x, with the special values of the header.
    pub(super) fn log(&mut self, x: Value) -> Value {
        // Subnormals (and zero, negatives: replaced below) are scaled by 2²³ into the normal range.
        let smallest = self.splat(f32::MIN_POSITIVE);
        let sub = self.b.ins().fcmp(FloatCC::LessThan, x, smallest);
        let sub_f = self.as_float(sub);
        let two23 = self.splat(8_388_608.0);
        let scaled = self.b.ins().fmul(x, two23);
        let xs = self.b.ins().bitselect(sub_f, scaled, x);
        let twenty_three = self.splat_int(23);
        let k_adjust = self.b.ins().band(sub, twenty_three);
        let r = self.log_normal(xs, Some(k_adjust));
        // +∞ and NaN give themselves; x < 0 NaN; ±0 −∞.
        let inf = self.splat(f32::INFINITY);
        let finite = self.mask(FloatCC::LessThan, x, inf);
        let r = self.b.ins().bitselect(finite, r, x);
        let zero = self.splat(0.0);
        let negative = self.mask(FloatCC::LessThan, x, zero);
        let nan = self.splat(f32::NAN);
        let r = self.b.ins().bitselect(negative, nan, r);
        let is_zero = self.mask(FloatCC::Equal, x, zero);
        let neg_inf = self.splat(f32::NEG_INFINITY);
        self.b.ins().bitselect(is_zero, neg_inf, r)
    }

    /// ln x for a positive normal finite x; `k_adjust` (`i32x4`) is subtracted from the exponent.
    fn log_normal(&mut self, x: Value, k_adjust: Option<Value>) -> Value {
        // x = 2ᵏ·m with m ∈ [√½, √2): offsetting the bits by 1 − √½ carries m ≥ √2 into the
        // exponent (musl's `logf`).
        const SQRT_HALF: i32 = 0x3f35_04f3;
        let bits = self.as_int(x);
        let shifted = self.add_int(bits, 0x3f80_0000 - SQRT_HALF);
        let e = self.b.ins().sshr_imm_s(shifted, 23);
        let mut k = self.add_int(e, -127);
        if let Some(adjust) = k_adjust {
            k = self.b.ins().isub(k, adjust);
        }
        let low = self.splat_int(0x007f_ffff);
        let mantissa = self.b.ins().band(shifted, low);
        let m = self.add_int(mantissa, SQRT_HALF);
        let m = self.as_float(m);
        let one = self.splat(1.0);
        let f = self.b.ins().fsub(m, one);
        let kf = self.b.ins().fcvt_from_sint(types::F32X4, k);
        // ln x = k·ln 2 + f − f²/2 + f³·P(f), the small terms first.
        let f2 = self.b.ins().fmul(f, f);
        let p = self.poly(f, &LOG_P);
        let f3 = self.b.ins().fmul(f2, f);
        let y = self.b.ins().fmul(f3, p);
        let lo = self.splat(LN2_LO);
        let y = self.mul_add(kf, lo, y);
        let minus_half = self.splat(-0.5);
        let y = self.mul_add(minus_half, f2, y);
        let y = self.b.ins().fadd(f, y);
        let hi = self.splat(LN2_HI);
        self.mul_add(kf, hi, y)
    }

    /// −|x|.
    fn neg_abs(&mut self, x: Value) -> Value {
        let sign = self.splat(-0.0);
        self.b.ins().bor(x, sign)
    }

    /// tanh x = sign(x)·(1 − e)/(1 + e), e = e^(−2|x|); a polynomial where that would cancel.
    pub(super) fn tanh(&mut self, x: Value) -> Value {
        let a = self.b.ins().fabs(x);
        let a2 = self.b.ins().fmul(a, a);
        let p = self.poly(a2, &TANH_P);
        let pa2 = self.b.ins().fmul(p, a2);
        let small = self.mul_add(pa2, a, a);
        let minus_two = self.splat(-2.0);
        let arg = self.b.ins().fmul(a, minus_two);
        let e = self.exp_non_positive(arg);
        let one = self.splat(1.0);
        let num = self.b.ins().fsub(one, e);
        let den = self.b.ins().fadd(one, e);
        let large = self.b.ins().fdiv(num, den);
        let limit = self.splat(TANH_SMALL);
        let is_small = self.mask(FloatCC::LessThan, a, limit);
        let t = self.b.ins().bitselect(is_small, small, large);
        // t ≥ 0 (or NaN): give it x's sign.
        let sign_bit = self.splat(-0.0);
        let sign = self.b.ins().band(x, sign_bit);
        self.b.ins().bor(t, sign)
    }

    /// 1/(1 + e) for x ≥ 0, e/(1 + e) below, e = e^(−|x|): exp of a non-positive number only.
    pub(super) fn sigmoid(&mut self, x: Value) -> Value {
        let arg = self.neg_abs(x);
        let e = self.exp_non_positive(arg);
        let one = self.splat(1.0);
        let den = self.b.ins().fadd(one, e);
        let zero = self.splat(0.0);
        let non_negative = self.mask(FloatCC::GreaterThanOrEqual, x, zero);
        let num = self.b.ins().bitselect(non_negative, one, e);
        self.b.ins().fdiv(num, den)
    }

    /// max(x, 0) + log1p(e), e = e^(−|x|) ∈ (0, 1]. log1p(e) = ln u + c/u with u = 1 + e rounded
    /// and c = e − (u − 1) its rounding error (exact), so it stays accurate as e → 0, where it is
    /// the whole result.
    pub(super) fn softplus(&mut self, x: Value) -> Value {
        let arg = self.neg_abs(x);
        let e = self.exp_non_positive(arg);
        let one = self.splat(1.0);
        let u = self.b.ins().fadd(one, e);
        let u1 = self.b.ins().fsub(u, one);
        let c = self.b.ins().fsub(e, u1);
        // u ∈ [1, 2] is normal; NaN reaches the result through c.
        let ln_u = self.log_normal(u, None);
        let cu = self.b.ins().fdiv(c, u);
        let l = self.b.ins().fadd(ln_u, cu);
        let zero = self.splat(0.0);
        let positive = self.mask(FloatCC::LessThan, zero, x);
        let m = self.b.ins().bitselect(positive, x, zero);
        self.b.ins().fadd(m, l)
    }
}
