//! The CPU backend's inline `exp log tanh sigmoid softplus` (`backend/cpu/math.rs`) against the
//! f64 functions of the standard library.
//!
//! Each function is compiled alone as a group over `[N]` and run on about 10⁶ points: evenly
//! spaced over its useful domain, spread over every binade by bit pattern (both signs, subnormals
//! included), and the edge cases (±0, ±∞, NaN, the overflow and underflow boundaries). The error
//! of an element is in units in the last place of the f32 nearest the f64 reference (the spacing
//! of subnormals below 2⁻¹²⁶); NaN must give NaN and ±∞ exactly ±∞, the sign of a zero is not
//! checked (`ir/op.rs`). Every function is run with `fma` on and off, and with `vectorize` on
//! (N ≡ 3 mod 4, so three elements take the scalar tail) and off: both must give the same bits.
//!
//! Each test's bound is the worst error over all 2³² floats, measured by the ignored `exhaustive`
//! (13 minutes on 2 cores; the table in `math.rs`). `-- --nocapture` prints the worst error of the
//! sweep; `-- --ignored --nocapture bench` times `exp(x)` and `sigmoid(x)·tanh(x)` on 10⁶ elements.

use circ::backend::cpu::{self, Options};
use circ::check::checked::DataSource;
use circ::check::types::{Dim, Elem, SymId};
use circ::ir::graph::{DataInfo, Output};
use circ::ir::op::{BinaryOp, UnaryOp};
use circ::ir::{Graph, NodeId, Op};
use circ::passes::fusion;

/// `f(x)` over `[N]` (or `sigmoid(x)·tanh(x)` for `None`).
fn graph(f: Option<UnaryOp>) -> Graph {
    let mut g = Graph::default();
    g.syms = vec!["N".into()];
    g.data.push(DataInfo {
        name: "x".into(),
        elem: Elem::Float,
        shape: vec![Dim::Sym(SymId(0))],
        source: DataSource::Columns(vec![]),
    });
    let x = g.push(Op::Data(0), &[], None, None);
    let y: NodeId = match f {
        Some(f) => g.unary(f, x, None),
        None => {
            let s = g.unary(UnaryOp::Sigmoid, x, None);
            let t = g.unary(UnaryOp::Tanh, x, None);
            g.binary(BinaryOp::Mul, s, t, None)
        }
    };
    // Not a verified graph (its "loss" is a vector): only the group is compiled.
    g.outputs.push(Output { name: "loss".into(), node: y });
    g
}

/// Runs the compiled `g` on `x`.
fn run(g: &Graph, opts: &Options, x: &[f32]) -> Vec<f32> {
    let groups = fusion::groups(g);
    assert_eq!(groups.len(), 1);
    let code = cpu::compile_group(g, &groups[0], opts).unwrap();
    let mut y = vec![0.0f32; x.len()];
    code.kernels()[0].run(&[x.len()], &[x], &mut [&mut y]).unwrap();
    y
}

fn reference(f: UnaryOp, x: f64) -> f64 {
    match f {
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        _ => unreachable!(),
    }
}

/// The error of `got` in units in the last place of `want` rounded to f32; 0 where both are the
/// same NaN, ∞ or zero, ∞ where one is NaN or infinite and the other is not.
fn ulps(got: f32, want: f64) -> f64 {
    let w = want as f32;
    if w.is_nan() || got.is_nan() {
        return if w.is_nan() && got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if w.is_infinite() || got.is_infinite() {
        return if w == got { 0.0 } else { f64::INFINITY };
    }
    let e = if w == 0.0 { -149 } else { ((w.abs().to_bits() >> 23) as i32 - 127).max(-126) - 23 };
    (got as f64 - want).abs() / 2f64.powi(e)
}

/// About 10⁶ inputs for `f`: evenly spaced over `[lo, hi]`, every binade of `±[tiny, big]` by
/// bit pattern, and the edge cases.
fn inputs(lo: f32, hi: f32, big: f32) -> Vec<f32> {
    let n = 500_000;
    let mut x: Vec<f32> = (0..n).map(|i| lo + (hi - lo) * (i as f32 / (n - 1) as f32)).collect();
    // Every 2^k-th f32 from the smallest subnormal up to `big`, both signs.
    let top = big.to_bits();
    let step = (top / 250_000).max(1);
    let mut b = 1u32;
    while b <= top {
        let v = f32::from_bits(b);
        x.extend([v, -v]);
        b += step;
    }
    x.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE * 0.5,
        f32::from_bits(1),
        f32::MAX,
        -f32::MAX,
        1.0,
        -1.0,
        // exp's overflow and underflow boundaries (ln of the largest float, of the smallest
        // normal and of half the smallest subnormal), and a step either side.
        88.72283,
        88.72284,
        88.722_84,
        -87.33654,
        -103.27893,
        -103.97208,
        -103.972_09,
        -104.0,
        89.0,
        -89.0,
        // tanh's switch between its polynomial and exp.
        0.625,
        -0.625,
        0.624_999_94,
    ]);
    x
}

/// The worst error of `f` on every input, with fma on and off, vector and scalar code compared
/// bit for bit. Returns (worst ulp, worst |error| / |f(x)| where f(x) is normal).
fn sweep(f: UnaryOp, x: &[f32]) -> (f64, f64) {
    let mut x = x.to_vec();
    while x.len() % 4 != 3 {
        x.push(0.75);
    }
    let x = &x[..];
    let g = graph(Some(f));
    let mut worst = (0.0f64, 0.0f64);
    for fma in [false, true] {
        if fma && !cpu::host_has_fma() {
            continue;
        }
        let vector = run(&g, &Options { fma, vectorize: true, ..Options::default() }, x);
        let scalar = run(&g, &Options { fma, vectorize: false, ..Options::default() }, x);
        for (i, (&v, &s)) in vector.iter().zip(&scalar).enumerate() {
            assert!(
                v.to_bits() == s.to_bits() || (v.is_nan() && s.is_nan()),
                "{f:?}({:e}): vector {v:e}, scalar {s:e}",
                x[i]
            );
        }
        let mut here = (0.0f64, 0.0f64, 0.0f32);
        for (&x, &y) in x.iter().zip(&vector) {
            let want = reference(f, x as f64);
            let u = ulps(y, want);
            assert!(u.is_finite(), "{f:?}({x:e}) = {y:e}, want {want:e}");
            // Within 2e-7 relative, or a few ulp of a subnormal.
            let abs = (y as f64 - want).abs();
            assert!(u == 0.0 || abs <= 2e-7 * want.abs() + 4e-45, "{f:?}({x:e}) = {y:e}, want {want:e} ({u:.2} ulp)");
            if u > here.0 {
                here = (u, here.1, x);
            }
            if (want as f32).is_normal() {
                here.1 = here.1.max(abs / want.abs());
            }
        }
        println!(
            "{f:>9?} fma {fma:<5}: {} points, worst {:.3} ulp (at x = {:e}), worst relative {:.3e}",
            x.len(),
            here.0,
            here.2,
            here.1
        );
        worst = (worst.0.max(here.0), worst.1.max(here.1));
    }
    worst
}

#[test]
fn exp_is_correctly_rounded() {
    let x = inputs(-105.0, 90.0, 200.0);
    let (u, _) = sweep(UnaryOp::Exp, &x);
    assert!(u <= 0.500_02, "{u}");
    // The interpreter's `f32::exp` (glibc's `expf`, 0.502 ulp) gives the same bits but where one
    // of the two misses a midpoint by a hair (most often for tiny |x|, which the sweep has many of).
    let y = run(&graph(Some(UnaryOp::Exp)), &Options::default(), &x);
    let differ: Vec<f32> =
        x.iter().zip(&y).filter(|(x, y)| x.exp().to_bits() != y.to_bits() && !y.is_nan()).map(|(x, _)| *x).collect();
    println!("exp: {} of {} differ from f32::exp", differ.len(), x.len());
    assert!(differ.len() <= x.len() / 1000);
    let y = run(&graph(Some(UnaryOp::Exp)), &Options::default(), &[0.0, -0.0, 88.73, -104.0, -103.0, 1.0, 0.5]);
    assert_eq!(&y[..4], &[1.0, 1.0, f32::INFINITY, 0.0]);
    assert_eq!(y[4], (-103.0f64).exp() as f32, "subnormal results are rounded, not flushed");
}

#[test]
fn log_within_0_85_ulp() {
    let mut x = inputs(0.0, 4.0, f32::MAX);
    x.extend((0..200_000).map(|i| 0.5 + 1.5 * i as f32 / 200_000.0));
    let (u, _) = sweep(UnaryOp::Log, &x);
    assert!(u <= 0.85, "{u}");
    let y = run(&graph(Some(UnaryOp::Log)), &Options::default(), &[0.0, -0.0, f32::INFINITY, 1.0, -1.0, -0.0]);
    assert_eq!(&y[..4], &[f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY, 0.0]);
    assert!(y[4].is_nan());
}

#[test]
fn tanh_within_1_51_ulp() {
    let (u, _) = sweep(UnaryOp::Tanh, &inputs(-10.0, 10.0, 100.0));
    assert!(u <= 1.51, "{u}");
    let y =
        run(&graph(Some(UnaryOp::Tanh)), &Options::default(), &[f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-30, 20.0]);
    assert_eq!(y, [1.0, -1.0, -0.0, 1e-30, 1.0]);
    assert!(y[2].is_sign_negative());
}

#[test]
fn sigmoid_within_2_4_ulp() {
    let (u, _) = sweep(UnaryOp::Sigmoid, &inputs(-110.0, 110.0, 200.0));
    assert!(u <= 2.41, "{u}");
    let y = run(&graph(Some(UnaryOp::Sigmoid)), &Options::default(), &[f32::INFINITY, f32::NEG_INFINITY, 0.0]);
    assert_eq!(y, [1.0, 0.0, 0.5]);
}

#[test]
fn softplus_within_2_ulp() {
    let (u, _) = sweep(UnaryOp::Softplus, &inputs(-110.0, 110.0, 1e30));
    assert!(u <= 2.0, "{u}");
    let y = run(&graph(Some(UnaryOp::Softplus)), &Options::default(), &[f32::INFINITY, f32::NEG_INFINITY, 1e30, 0.0]);
    assert_eq!(y, [f32::INFINITY, 0.0, 1e30, std::f32::consts::LN_2]);
}

/// No calls are left for these functions; the clamps are single `minps`/`maxps`.
/// `CIRC_SHOW_ASM=1` prints the machine code.
#[test]
fn the_functions_are_inline_vector_code() {
    for f in [UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Softplus] {
        let g = graph(Some(f));
        let grp = &fusion::groups(&g)[0];
        let asm = cpu::asm_text(&g, grp, &Options::default()).unwrap();
        if std::env::var_os("CIRC_SHOW_ASM").is_some() {
            println!("{f:?}:\n{asm}");
        }
        if cfg!(target_arch = "x86_64") {
            assert!(!asm.lines().any(|l| l.trim_start().starts_with("call")), "{f:?}: a call in\n{asm}");
            if f == UnaryOp::Exp {
                assert!(asm.contains("minps") && asm.contains("maxps"), "{asm}");
            }
        }
    }
}

/// Every one of the 2³² floats through each function, with fma on and off: the worst ulp error
/// and the worst relative error of a normal result (the numbers in `math.rs`); for `exp`, how many
/// differ from `f32::exp`. 13 minutes on 2 cores (`CIRC_MATH_ONLY=exp`: `exp` alone):
/// `cargo test --release --test backend_cpu_math -- --ignored --nocapture exhaustive`.
#[test]
#[ignore]
fn exhaustive() {
    let fs: Vec<UnaryOp> = match std::env::var("CIRC_MATH_ONLY").as_deref() {
        Ok("exp") => vec![UnaryOp::Exp],
        _ => vec![UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Softplus],
    };
    for f in fs {
        for fma in [false, true] {
            if fma && !cpu::host_has_fma() {
                continue;
            }
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
            let chunk = 1u64 << 22;
            let worst = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            let g = graph(Some(f));
                            let opts = Options { fma, vectorize: true, ..Options::default() };
                            let groups = fusion::groups(&g);
                            let code = cpu::compile_group(&g, &groups[0], &opts).unwrap();
                            let k = &code.kernels()[0];
                            let mut x = vec![0.0f32; chunk as usize];
                            let mut y = vec![0.0f32; chunk as usize];
                            let mut worst = (0.0f64, 0.0f32, 0.0f64, 0.0f32, 0u64);
                            let mut start = t * chunk;
                            while start < 1u64 << 32 {
                                for (i, v) in x.iter_mut().enumerate() {
                                    *v = f32::from_bits((start + i as u64) as u32);
                                }
                                k.run(&[x.len()], &[&x], &mut [&mut y]).unwrap();
                                for (&x, &y) in x.iter().zip(&y) {
                                    if f == UnaryOp::Exp && x.exp().to_bits() != y.to_bits() && !y.is_nan() {
                                        worst.4 += 1;
                                    }
                                    let want = reference(f, x as f64);
                                    let u = ulps(y, want);
                                    if u > worst.0 {
                                        worst.0 = u;
                                        worst.1 = x;
                                    }
                                    if (want as f32).is_normal() {
                                        let rel = (y as f64 - want).abs() / want.abs();
                                        if rel > worst.2 {
                                            worst.2 = rel;
                                            worst.3 = x;
                                        }
                                    }
                                }
                                start += threads * chunk;
                            }
                            worst
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).fold((0.0, 0.0, 0.0, 0.0, 0), |a, b| {
                    (
                        if b.0 > a.0 { b.0 } else { a.0 },
                        if b.0 > a.0 { b.1 } else { a.1 },
                        if b.2 > a.2 { b.2 } else { a.2 },
                        if b.2 > a.2 { b.3 } else { a.3 },
                        a.4 + b.4,
                    )
                })
            });
            println!(
                "{f:>9?} fma {fma:<5}: worst {:.5} ulp at x = {:e}, worst relative {:.3e} at x = {:e}{}",
                worst.0,
                worst.1,
                worst.2,
                worst.3,
                if f == UnaryOp::Exp { format!("; {} differ from f32::exp", worst.4) } else { String::new() }
            );
        }
    }
}

/// Times `exp(x)` and `sigmoid(x)·tanh(x)` on 10⁶ elements (median of 31 runs): the JIT kernel
/// (f32x4 + fma, and scalar), and a plain Rust loop over the standard library's f32 functions.
#[test]
#[ignore]
fn bench_exp_and_sigmoid_tanh_1m() {
    use std::time::Instant;
    let n = 1_000_000;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let x: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 10.0
        })
        .collect();
    let median = |f: &mut dyn FnMut()| {
        let mut t: Vec<f64> = (0..31)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    for (name, f) in [("exp(x)", Some(UnaryOp::Exp)), ("sigmoid(x)*tanh(x)", None)] {
        let g = graph(f);
        let grp = &fusion::groups(&g)[0];
        let mut y = vec![0.0f32; n];
        let mut line = format!("{name:<20} 1e6 f32, median of 31:");
        for (what, opts) in [
            ("f32x4+fma", Options::default()),
            ("scalar", Options { fma: false, vectorize: false, ..Options::default() }),
        ] {
            let code = cpu::compile_group(&g, grp, &opts).unwrap();
            let k = &code.kernels()[0];
            let t = median(&mut || k.run(&[n], &[&x], &mut [&mut y]).unwrap());
            line += &format!("  JIT {what} {:7.3} ms", t * 1e3);
        }
        let t = median(&mut || {
            for (y, x) in y.iter_mut().zip(&x) {
                *y = match f {
                    Some(_) => x.exp(),
                    None => {
                        let s = if *x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) };
                        s * x.tanh()
                    }
                };
            }
            std::hint::black_box(&y);
        });
        line += &format!("  Rust std loop {:7.3} ms", t * 1e3);
        println!("{line}");
    }
}
