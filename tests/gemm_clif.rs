//! The Cranelift-generated matrix product (`backend::cpu::gemm_clif`) against a naive f64
//! product: odd sizes and edge tiles, sizes across the cache blocks, transposed and padded
//! operands, accumulate on and off, one and two threads.

use circ::backend::cpu::gemm_clif::{GeneratedGemm, Tile, PARALLEL_MIN_FMAS};
use std::sync::OnceLock;

fn gemm() -> &'static GeneratedGemm {
    static G: OnceLock<GeneratedGemm> = OnceLock::new();
    G.get_or_init(|| GeneratedGemm::new().expect("the micro-kernel compiles"))
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// How an operand is laid out: transposed (column-major) or not, and padding added to its
/// leading dimension.
#[derive(Clone, Copy, Debug)]
struct Layout {
    t: bool,
    pad: usize,
}

const PLAIN: Layout = Layout { t: false, pad: 0 };
const TRANS: Layout = Layout { t: true, pad: 0 };

/// A rows×cols operand stored as `l` says: (values, row stride, column stride).
fn operand(rows: usize, cols: usize, l: Layout, seed: u64) -> (Vec<f32>, usize, usize) {
    let (rs, cs) = if l.t { (1, rows + l.pad) } else { (cols + l.pad, 1) };
    let len = if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
    (values(len, seed), rs, cs)
}

/// Runs one product and compares every element with the f64 product, relative to
/// Σ_p |a_ip·b_pj| (+ |c_ij| when accumulating). Elements of C outside the m×n view must stay.
fn check(m: usize, k: usize, n: usize, la: Layout, lb: Layout, accumulate: bool, threads: usize) {
    let (a, a_rs, a_cs) = operand(m, k, la, 1 + (m * 31 + k) as u64);
    let (b, b_rs, b_cs) = operand(k, n, lb, 2 + (k * 17 + n) as u64);
    let c_rs = n + 3;
    let c0 = values(m * c_rs, 3);
    let mut c = c0.clone();
    if !accumulate {
        // C must not be read: NaN would show.
        for i in 0..m {
            c[i * c_rs..i * c_rs + n].fill(f32::NAN);
        }
    }
    gemm().matmul((m, k, n), &a, (a_rs, a_cs), &b, (b_rs, b_cs), &mut c, c_rs, accumulate, threads).unwrap();
    let what = format!("{m}×{k}×{n} A {la:?} B {lb:?} accumulate {accumulate} threads {threads}");
    for i in 0..m {
        for j in 0..c_rs {
            let got = c[i * c_rs + j];
            if j >= n {
                assert_eq!(got.to_bits(), c0[i * c_rs + j].to_bits(), "{what}: padding of C at ({i}, {j}) changed");
                continue;
            }
            let (mut want, mut scale) = (0f64, 0f64);
            for p in 0..k {
                let x = a[i * a_rs + p * a_cs] as f64 * b[p * b_rs + j * b_cs] as f64;
                want += x;
                scale += x.abs();
            }
            if accumulate {
                want += c0[i * c_rs + j] as f64;
                scale += (c0[i * c_rs + j] as f64).abs();
            }
            let err = (got as f64 - want).abs() / scale.max(f64::MIN_POSITIVE);
            assert!(err < 1e-5 || (got as f64 == want), "{what}: C[{i}, {j}] = {got}, want {want} (error {err:e})");
        }
    }
}

/// Every layout and accumulate setting of one shape, on one and two threads.
fn check_all(m: usize, k: usize, n: usize) {
    for (la, lb) in [(PLAIN, PLAIN), (TRANS, PLAIN), (PLAIN, TRANS), (TRANS, TRANS)] {
        for accumulate in [false, true] {
            for threads in [1, 2] {
                check(m, k, n, la, lb, accumulate, threads);
            }
        }
    }
}

#[test]
fn small_and_odd_shapes() {
    for (m, k, n) in [
        (1, 1, 1),
        (1, 5, 1),
        (2, 3, 4),
        (6, 8, 8),
        (7, 13, 5),
        (5, 1, 3),
        (13, 7, 17),
        (12, 16, 24),
        (65, 3, 129),
        (1, 300, 1),
        (3, 50, 200),
    ] {
        check_all(m, k, n);
    }
}

#[test]
fn shapes_across_cache_blocks() {
    let t = Tile::default();
    // k across KC (with a remainder of the k unrolling), m across MC, n across NC.
    check_all(t.mc + 7, 2 * t.kc + 3, 37);
    check_all(9, t.kc + 1, t.nc + 11);
}

#[test]
fn two_threads_split_rows_and_columns() {
    // Large enough to run on two threads: split by rows (B packed on both), by columns (A
    // packed on both), and by rows with an edge tile in each band.
    for (m, k, n) in [(150, 300, 97), (5, 1000, 900), (4101, 130, 9)] {
        assert!(m * k * n >= PARALLEL_MIN_FMAS);
        for (la, lb) in [(PLAIN, PLAIN), (TRANS, TRANS)] {
            for accumulate in [false, true] {
                check(m, k, n, la, lb, accumulate, 2);
                check(m, k, n, la, lb, accumulate, 3);
            }
        }
    }
}

#[test]
fn padded_operands() {
    let pa = Layout { t: false, pad: 5 };
    let pb = Layout { t: true, pad: 2 };
    for (m, k, n) in [(7, 13, 5), (40, 260, 33)] {
        for threads in [1, 2] {
            check(m, k, n, pa, pb, false, threads);
            check(m, k, n, pb, pa, true, threads);
        }
    }
}

#[test]
fn empty_products() {
    // k = 0: C becomes 0, or stays when accumulating.
    let g = gemm();
    let mut c = vec![7.0f32; 3 * 4];
    g.matmul((3, 0, 4), &[], (0, 1), &[], (4, 1), &mut c, 4, true, 1).unwrap();
    assert!(c.iter().all(|&x| x == 7.0));
    g.matmul((3, 0, 4), &[], (0, 1), &[], (4, 1), &mut c, 4, false, 2).unwrap();
    assert!(c.iter().all(|&x| x == 0.0));
    // m = 0 or n = 0: nothing is touched.
    let mut c = vec![7.0f32; 4];
    g.matmul((0, 5, 4), &[], (5, 1), &values(20, 1), (4, 1), &mut c, 4, false, 1).unwrap();
    g.matmul((4, 5, 0), &values(20, 1), (5, 1), &[], (0, 1), &mut c, 1, false, 1).unwrap();
    assert!(c.iter().all(|&x| x == 7.0));
}

#[test]
fn bad_slices_are_refused() {
    let g = gemm();
    let (a, b) = (values(6, 1), values(12, 2));
    let mut c = vec![0f32; 8];
    assert!(g.matmul((2, 3, 4), &a[..5], (3, 1), &b, (4, 1), &mut c, 4, false, 1).is_err());
    assert!(g.matmul((2, 3, 4), &a, (3, 1), &b[..11], (4, 1), &mut c, 4, false, 1).is_err());
    assert!(g.matmul((2, 3, 4), &a, (3, 1), &b, (4, 1), &mut c[..7], 4, false, 1).is_err());
    assert!(g.matmul((2, 3, 4), &a, (3, 1), &b, (4, 1), &mut c, 3, false, 1).is_err(), "rows of C overlap");
    assert!(g.matmul((2, 3, 4), &a, (3, 1), &b, (4, 1), &mut c, 4, false, 1).is_ok());
}

#[test]
fn other_tiles_compute_the_same() {
    for (mr, nr, unroll, reload_a) in [(4, 8, 1, false), (5, 12, 2, true), (1, 4, 8, false)] {
        let t = Tile { mr, nr, unroll, reload_a, mc: mr * 10, nc: nr * 7, kc: 33 };
        let g = GeneratedGemm::with_tile(t).unwrap();
        let (m, k, n) = (23, 70, 61);
        let (a, b) = (values(m * k, 4), values(k * n, 5));
        let mut c = vec![0f32; m * n];
        g.matmul((m, k, n), &a, (k, 1), &b, (n, 1), &mut c, n, false, 1).unwrap();
        let mut want = vec![0f32; m * n];
        gemm().matmul((m, k, n), &a, (k, 1), &b, (n, 1), &mut want, n, false, 1).unwrap();
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "tile {t:?}: {x} vs {y}");
        }
    }
    assert!(GeneratedGemm::with_tile(Tile { nr: 6, ..Tile::default() }).is_err());
}

#[test]
fn micro_kernel_text() {
    let g = gemm();
    assert!(g.clif_text().contains("fma"), "{}", g.clif_text());
    // The default tile is the largest that keeps every value in a register: no stack slots.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        let spills: Vec<&str> = g.asm_text().lines().filter(|l| l.contains("(%rsp)")).collect();
        assert!(spills.is_empty(), "the micro-kernel spills:\n{}", spills.join("\n"));
    }
}
