//! The GEMV with int8 activations (`codebook/int8.rs`), on the calling
//! thread:
//!
//! * [`Q8Vector`] against its definition, on edge cases (zeros, one huge
//!   outlier, tiny and non-finite values, K off the group size);
//! * every SIMD int8 kernel this CPU runs against the scalar twin, **bit
//!   for bit**, for b = 2..6, K off the group size, blocks within, at and
//!   across rows, all (alpha, beta);
//! * every int8 kernel against the dequantize-then-f64 product within a
//!   bound computed from the quantization steps (not a fixed tolerance);
//! * exactly, on data that int8 represents exactly (integer centroids and
//!   activations with a ±127 in every codebook and every group), so that a
//!   wrong lookup or a lost correction cannot hide in that bound;
//! * which matrices have int8 kernels ([`int8_fits`]);
//! * the int8 GEMM (prefill), for every int8 kernel (the scalar twin
//!   included), b = 2..6, M = 1..13 and more, strided X and C, all (alpha,
//!   beta): within the same bound of the f64 product as the GEMV, exact on
//!   data int8 represents, and every SIMD GEMM against the scalar twin
//!   **bit for bit** (tiles of X and of Ŵ cut anywhere); its column blocks
//!   (how ditto-rt splits it) against the whole product; each row of an
//!   M-row product against the 1-row product of that row, bit for bit;
//!   [`Q8Row`] against [`Q8Vector`].

mod common;

use common::*;
use ditto_kernels::codebook::{
    gemm_block_int8, gemm_block_panels, gemm_int8, gemv_block_int8, gemv_int8, gemv_rows_int8,
    int8_fits, CbMatrix, GemmRows, Int8Codebooks, Int8GemmBlock, Int8GemvBlock, Int8Isa,
    Int8Panels, Q8Row, Q8Vector, Scale, INT8_GEMM_COLS, INT8_GEMM_ROWS, INT8_GROUP, PANEL_BITS,
};
use half::f16;

const WIDTHS: [usize; 5] = [2, 3, 4, 5, 6];

fn simd_int8_isas() -> Vec<Int8Isa> {
    let isas: Vec<Int8Isa> = Int8Isa::available()
        .into_iter()
        .filter(|isa| *isa != Int8Isa::Scalar)
        .collect();
    if isas.is_empty() {
        eprintln!("note: this CPU runs no SIMD int8 kernel; only the scalar twin is tested");
    }
    isas
}

/// Shapes and blocks that the int8 kernels take, for `bits`: K and B
/// multiples of 64 (blocks inside rows and across them), odd K with blocks
/// of whole rows, one block for the whole matrix; plus random ones.
fn int8_cases(rng: &mut Lcg, bits: usize, count: usize) -> Vec<((usize, usize), usize)> {
    let mut cases = vec![
        ((3, 896), 32 << bits),
        ((5, 128), 64),
        ((7, 192), 128), // blocks of 2/3 of a row: boundaries inside rows
        ((9, 128), 320), // blocks across rows
        ((4, 64), 4096), // one block
        ((6, 1000), 1000),
        ((4, 520), 1040), // two rows per block, K off 64
        ((3, 100), 304),  // one block, K off 64
        ((2, 24), 48),
        ((40, 64), 64),
    ];
    let odd = columns(bits);
    for _ in 0..count {
        let n = rng.pick(&[1, 2, 3, 7, 16, 17, 31, 40]);
        let case = match rng.below(3) {
            0 => {
                let k = 64 * rng.pick(&[1, 2, 3, 5, 14]);
                ((n, k), 64 * rng.pick(&[1, 2, 3, 4, 8, 32, 64]))
            }
            1 => {
                let k = rng.pick(&odd);
                (
                    (n, k),
                    (k * rng.pick(&[1, 2, 3])).next_multiple_of(8).max(8),
                )
            }
            _ => {
                let k = rng.pick(&odd);
                ((n, k), (n * k).next_multiple_of(8).max(8))
            }
        };
        cases.push(case);
    }
    cases.retain(|&((n, k), block)| (k * bits).is_multiple_of(8) && fits(n, k, bits, block));
    cases
}

/// Whether `int8_fits` takes the shape (checked on an all-zero matrix).
fn fits(n: usize, k: usize, bits: usize, block: usize) -> bool {
    let idx = vec![0u8; (n * k * bits).div_ceil(8)];
    let cb = vec![f16::ZERO; (n * k).div_ceil(block) << bits];
    int8_fits(&CbMatrix::new(n, k, bits, block, &idx, &cb).unwrap())
}

#[test]
fn int8_fits_takes_group_aligned_segments_of_b_2_to_6() {
    for bits in WIDTHS {
        assert!(fits(4, 896, bits, 32 << bits), "default block, b={bits}");
        assert!(fits(4, 128, bits, 64), "b={bits}");
        assert!(fits(4, 128, bits, 192), "b={bits}: across rows, 64-aligned");
        assert!(fits(4, 1000, bits, 2000), "b={bits}: whole rows");
        assert!(fits(3, 104, bits, 312), "b={bits}: one block");
        assert!(!fits(4, 128, bits, 32), "b={bits}: half groups");
        assert!(!fits(4, 104, bits, 64), "b={bits}: K off 64, B inside rows");
        assert!(!fits(4, 128, bits, 96), "b={bits}: boundaries at 96");
    }
    assert!(!fits(4, 896, 8, 8192), "b = 8 has no int8 kernel");
    let matrix = |bits: usize| {
        let (idx, cb) = (vec![0u8; 64 * bits], vec![f16::ZERO; 1 << bits]);
        CbMatrix::new(4, 128, bits, 512, &idx, &cb).map(|w| {
            [Int8Isa::Scalar, Int8Isa::Avx512Vnni, Int8Isa::Avx2Vnni].map(|isa| isa.fits(&w))
        })
    };
    assert_eq!(matrix(4).unwrap(), [true, true, true]);
    assert_eq!(matrix(3).unwrap(), [true, true, false], "AVX2: b = 4 only");
    for bits in WIDTHS {
        let cases = int8_cases(&mut Lcg(1), bits, 40);
        assert!(
            cases.len() > 40,
            "b={bits}: too few int8 test cases: {cases:?}"
        );
    }
}

#[test]
fn q8_vector_round_trip_and_edge_cases() {
    for isa in Int8Isa::available() {
        // All zeros: scale 0, values 0, and x̂ = 0.
        let v = Q8Vector::new_with(isa, &[0.0; 100]);
        assert_eq!(v.groups().len(), 2);
        assert_eq!(v.scales(), &[0.0, 0.0]);
        assert_eq!(v.sums(), &[0, 0]);
        assert!(v.dequantized().iter().all(|&x| x == 0.0));

        // One huge outlier among small values: it alone sets its group's scale
        // (and is kept exactly up to the scale's rounding), the rest of its
        // group rounds to zero, the next group keeps its own scale.
        let mut x: Vec<f32> = (0..130).map(|i| (i as f32 - 60.0) * 1e-3).collect();
        x[5] = 3.0e30;
        let v = Q8Vector::new_with(isa, &x);
        assert_eq!(v.value(5), 127);
        assert_eq!(v.scales()[0], 3.0e30 / 127.0);
        assert!((0..64).filter(|&i| i != 5).all(|i| v.value(i) == 0));
        assert_eq!(v.scales()[1], x[127] / 127.0);
        assert_eq!(v.value(127), 127, "the max of group 1");
        assert_eq!(v.scales()[2], x[129] / 127.0);
        assert_eq!(
            (v.value(128), v.value(129)),
            (125, 127),
            "group 2: x[128..130]"
        );
        // The padding past K is zero.
        assert!(v.groups()[2].q[2..].iter().all(|&q| q == 0));

        // Tiny values (max|x| ~3e-40, 127/max|x| overflows f32) and random
        // ones: |xq| ≤ 127, the sums and lane biases as defined, and
        // |x − s_x·xq| ≤ s_x·(1/2 + 2⁻¹⁵) + 127·2⁻¹⁵⁰: half a step, plus
        // x·(127/max|x|) off by 3 f32 roundings (3·2⁻²⁴·127 < 2⁻¹⁵ steps), plus
        // for a subnormal s_x (tiny groups) its rounding to the subnormal
        // spacing 2⁻¹⁴⁹, times |xq| ≤ 127.
        let mut rng = Lcg(21);
        for x in [
            (0..64)
                .map(|i| (i as f32 - 30.0) * 1e-41)
                .collect::<Vec<_>>(),
            rng.vec(64 * 5 + 17),
            rng.vec(1),
            (0..200)
                .map(|i| if i % 3 == 0 { -1.0 } else { 0.5 })
                .collect(),
        ] {
            let v = Q8Vector::new_with(isa, &x);
            assert_eq!(v.k(), x.len());
            assert_eq!(v.groups().len(), x.len().div_ceil(INT8_GROUP));
            for (g, group) in v.groups().iter().enumerate() {
                let xs = &x[g * INT8_GROUP..((g + 1) * INT8_GROUP).min(x.len())];
                let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert_eq!(v.scales()[g], amax / 127.0, "group {g}");
                assert!(
                    group.q.iter().any(|&q| q.abs() == 127),
                    "group {g}: no ±127"
                );
                assert!(group.q.iter().all(|&q| q != -128));
                let sum: i32 = group.q.iter().map(|&q| q as i32).sum();
                assert_eq!(v.sums()[g], sum);
                for l in 0..16 {
                    let lane: i32 = group.q[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
                    assert_eq!(group.bias[l], -128 * lane);
                }
                let s = v.scales()[g] as f64;
                for (i, &xi) in xs.iter().enumerate() {
                    let err = (xi as f64 - s * group.q[i] as f64).abs();
                    assert!(
                        err <= s * (0.5 + 2f64.powi(-15)) + 127.0 * 2f64.powi(-150),
                        "x[{}] = {xi}: q {} s {s} err {err}",
                        g * INT8_GROUP + i,
                        group.q[i]
                    );
                }
            }
        }

        // Non-finite values make their group's scale NaN (products NaN).
        let mut x = vec![1.0f32; 70];
        x[3] = f32::INFINITY;
        x[66] = f32::NAN;
        let v = Q8Vector::new_with(isa, &x);
        assert!(v.scales()[0].is_nan() && v.scales()[1].is_nan());
        let v = Q8Vector::new_with(isa, &[]);
        assert_eq!((v.k(), v.groups().len()), (0, 0));
    }
}

/// The SIMD quantizers give exactly the scalar one's values.
#[test]
fn simd_q8_vectors_match_the_scalar_one() {
    let mut rng = Lcg(27);
    let mut cases: Vec<Vec<f32>> = vec![
        vec![],
        vec![0.0; 130],
        vec![-0.0, 1.0, -1.0, 0.5, -0.5, 1.5 / 127.0, 2.5 / 127.0],
        (0..64).map(|i| (i as f32 - 30.0) * 1e-41).collect(),
        (0..200)
            .map(|i| if i % 3 == 0 { -1.0 } else { 0.5 })
            .collect(),
    ];
    let mut special = rng.vec(300);
    special[3] = f32::INFINITY;
    special[70] = f32::NAN;
    special[140] = f32::NEG_INFINITY;
    special[200] = 3.0e38;
    cases.push(special);
    for len in [1, 15, 16, 17, 63, 64, 65, 127, 896, 4864] {
        // Activations with outliers, and values on rounding ties.
        cases.push(
            (0..len)
                .map(|i| rng.f32() * if i % 29 == 0 { 40.0 } else { 1.0 })
                .collect(),
        );
        cases.push((0..len).map(|i| (i % 255) as f32 - 127.0 + 0.5).collect());
    }
    for isa in simd_int8_isas() {
        for x in &cases {
            let (got, want) = (
                Q8Vector::new_with(isa, x),
                Q8Vector::new_with(Int8Isa::Scalar, x),
            );
            let what = format!("{isa:?} K={}", x.len());
            assert_eq!(got.k(), want.k(), "{what}");
            assert_eq!(got.groups(), want.groups(), "{what}: values or lane biases");
            assert_eq!(got.sums(), want.sums(), "{what}: sums");
            let bits = |v: &Q8Vector| v.scales().iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{what}: scales");
        }
    }
}

#[test]
fn simd_int8_gemv_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(22);
    for isa in simd_int8_isas() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 24) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let x = rng.vec(k);
                for (alpha, beta) in SCALES {
                    let y0 = start_y(&mut rng, n, beta);
                    let (mut got, mut want) = (y0.clone(), y0);
                    gemv_int8(isa, &w, &x, &mut got, alpha, beta);
                    gemv_int8(Int8Isa::Scalar, &w, &x, &mut want, alpha, beta);
                    let what =
                        format!("{isa:?} b={bits} [{n}, {k}] B={block} alpha={alpha} beta={beta}");
                    assert_same(&got, &want, &what);
                    assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
                }
            }
        }
    }
}

/// Row slices compute what the whole product does (how ditto-rt splits it).
#[test]
fn int8_row_slices_match_the_whole_product() {
    let mut rng = Lcg(23);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            let ((n, k), block) = ((23, 192), 128);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let (w, x, y0) = (q.matrix(), rng.vec(k), rng.vec(n));
            if !isa.fits(&w) {
                continue;
            }
            let xq = Q8Vector::new(&x);
            let mut whole = y0.clone();
            gemv_int8(isa, &w, &x, &mut whole, 0.5, 1.5);
            let mut sliced = y0;
            let (top, bottom) = sliced.split_at_mut(9);
            let scale = Scale {
                alpha: 0.5,
                beta: 1.5,
            };
            gemv_rows_int8(isa, &w, None, &xq, top, 0, scale);
            gemv_rows_int8(isa, &w, None, &xq, bottom, 9, scale);
            assert_same(&sliced, &whole, &format!("{isa:?} b={bits}"));
        }
    }
}

/// With the codebooks converted once ([`Int8Codebooks`]), every kernel
/// computes the same outputs bit for bit as when it converts them itself
/// (row slices included: each slice reads the blocks of its own rows).
#[test]
fn int8_gemv_with_converted_codebooks_matches_bit_for_bit() {
    let mut rng = Lcg(29);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 12) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let converted = Int8Codebooks::new(&w);
                assert!(converted.fits(&w));
                let (x, y0) = (rng.vec(k), rng.vec(n));
                let xq = Q8Vector::new(&x);
                let (mut got, mut want) = (y0.clone(), y0);
                let cut = n / 3;
                let (top, bottom) = got.split_at_mut(cut);
                let scale = Scale {
                    alpha: 0.5,
                    beta: 1.5,
                };
                gemv_rows_int8(isa, &w, Some(&converted), &xq, top, 0, scale);
                gemv_rows_int8(isa, &w, Some(&converted), &xq, bottom, cut, scale);
                gemv_rows_int8(isa, &w, None, &xq, &mut want, 0, scale);
                assert_same(
                    &got,
                    &want,
                    &format!("{isa:?} b={bits} [{n}, {k}] B={block}"),
                );
            }
        }
    }
}

/// The GEMV of several vectors at once ([`gemv_block_int8`]) gives each
/// vector what the 1-vector GEMV gives it, bit for bit: every int8 kernel,
/// b = 2..6, 1 to 11 vectors (every remainder of the kernels' 4 at a
/// time), a block of columns off the start, with and without converted
/// codebooks, all (alpha, beta).
#[test]
fn int8_gemv_of_many_vectors_matches_the_gemv_of_each_bit_for_bit() {
    let mut rng = Lcg(31);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let converted = Int8Codebooks::new(&w);
                let m = 1 + rng.below(11);
                let xq: Vec<Q8Vector> = (0..m).map(|_| Q8Vector::new(&rng.vec(k))).collect();
                let cols = (n / 4, n);
                for (alpha, beta) in SCALES {
                    let c0 = start_y(&mut rng, m * n, beta);
                    let scale = Scale { alpha, beta };
                    let mut want = c0.clone();
                    for (xq, y) in xq.iter().zip(want.chunks_mut(n)) {
                        gemv_rows_int8(isa, &w, None, xq, &mut y[cols.0..], cols.0, scale);
                    }
                    for conv in [None, Some(&converted)] {
                        let mut got = c0.clone();
                        // SAFETY: C [m, n] holds every row and these columns.
                        unsafe {
                            gemv_block_int8(
                                isa,
                                &w,
                                conv,
                                Int8GemvBlock {
                                    xq: &xq,
                                    cols,
                                    c: got.as_mut_ptr(),
                                    ldc: n,
                                },
                                scale,
                            )
                        };
                        let what = format!(
                            "{isa:?} b={bits} [{n}, {k}] B={block} m={m} converted={} {alpha} {beta}",
                            conv.is_some()
                        );
                        assert_same(&got, &want, &what);
                    }
                }
            }
        }
    }
}

/// Converted codebooks of another matrix's shape are refused.
#[test]
#[should_panic(expected = "converted codebooks not of")]
fn int8_gemv_refuses_converted_codebooks_of_another_shape() {
    let mut rng = Lcg(31);
    let a = Quantized::random(&mut rng, (4, 128), 4, 128);
    let b = Quantized::random(&mut rng, (8, 128), 4, 128);
    let (wa, wb) = (a.matrix(), b.matrix());
    let converted = Int8Codebooks::new(&wb);
    let xq = Q8Vector::new(&rng.vec(128));
    let mut y = vec![0.0; 4];
    gemv_rows_int8(
        Int8Isa::Scalar,
        &wa,
        Some(&converted),
        &xq,
        &mut y,
        0,
        Scale {
            alpha: 1.0,
            beta: 0.0,
        },
    );
}

/// The error of y = alpha·Ŵ·x̂ + beta·y against the exact alpha·Ŵ·x + beta·y,
/// from the quantization steps. With ŵ = s_c·qc + δc, x = s_x·xq + δx:
/// ŵ·x − (s_c·qc)(s_x·xq) = ŵ·δx + x·δc − δc·δx, where
///
/// * |δx| ≤ e_x = s_x·(1/2 + 2⁻¹⁵): `Q8Vector`'s rounding (checked above;
///   no subnormal scales in these data);
/// * |δc| ≤ e_c = s_c·(1/2 + 2⁻¹⁵): the centroid rounds to within half a
///   step of c·(127/max|c|), and c·(127/max|c|)·(max|c|/127) differs from c
///   by at most 3 f32 roundings, 3·2⁻²⁴·|c| ≤ 3·2⁻²⁴·127·s_c;
///
/// so the products contribute Σ_i |ŵ_i|·e_x + |x_i|·e_c + e_c·e_x. The f32
/// arithmetic after the exact integer sums (GEMV: per group one conversion,
/// exact below 2²⁴, and one FMA; per segment one add and one FMA; 4
/// halvings; the epilogue. GEMM: per group one conversion, one product of
/// the scales and one FMA; the epilogue) rounds at most
/// (2·groups + 2·segments + 8) times on any path: at most 2·that·2⁻²⁴ relative to M = Σ |s_c·qc|·|s_x·xq| ≤
/// Σ (|ŵ|+e_c)(|x|+e_x).
fn int8_bound(q: &Quantized, x: &[f32], row: usize, alpha: f32, beta_y: f64) -> f64 {
    let (k, block, bits) = (q.k, q.block, q.bits);
    let dense = q.dequantized();
    let xq = Q8Vector::new(x);
    let (mut quant, mut mag) = (0.0f64, 0.0f64);
    let mut segments = std::collections::BTreeSet::new();
    for (c, &xc) in x.iter().enumerate() {
        let i = row * k + c;
        let cb = &q.codebooks[(i / block) << bits..((i / block) + 1) << bits];
        segments.insert(i / block);
        let amax = cb
            .iter()
            .fold(0.0f64, |m, v| m.max(v.to_f32().abs() as f64));
        let e_c = amax / 127.0 * (0.5 + 2f64.powi(-15));
        let e_x = xq.scales()[c / INT8_GROUP] as f64 * (0.5 + 2f64.powi(-15));
        let (w, xv) = ((dense[i] as f64).abs(), (xc as f64).abs());
        quant += w * e_x + xv * e_c + e_c * e_x;
        mag += (w + e_c) * (xv + e_x);
    }
    let roundings = (2 * k.div_ceil(INT8_GROUP) + 2 * segments.len() + 8) as f64;
    let eps = f32::EPSILON as f64 / 2.0;
    (alpha as f64).abs() * (quant + 2.0 * roundings * eps * mag) + 2.0 * eps * beta_y.abs() + 1e-30
}

#[test]
fn int8_gemv_is_within_the_quantization_bound_of_the_f64_product() {
    let mut rng = Lcg(24);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                if !isa.fits(&q.matrix()) {
                    continue;
                }
                let dense = q.dequantized();
                // Activations with a spread of magnitudes, as real ones have.
                let x: Vec<f32> = (0..k)
                    .map(|i| rng.f32() * if i % 7 == 0 { 8.0 } else { 0.5 })
                    .collect();
                for scale in SCALES {
                    let y0 = start_y(&mut rng, n, scale.1);
                    let mut y = y0.clone();
                    gemv_int8(isa, &q.matrix(), &x, &mut y, scale.0, scale.1);
                    let want = gemv_f64(&dense, (n, k), &x, &y0, scale);
                    for (r, &(want, _)) in want.iter().enumerate() {
                        let beta_y = if scale.1 == 0.0 {
                            0.0
                        } else {
                            scale.1 as f64 * y0[r] as f64
                        };
                        let tol = int8_bound(&q, &x, r, scale.0, beta_y);
                        let err = (y[r] as f64 - want).abs();
                        assert!(
                            err <= tol,
                            "{isa:?} b={bits} [{n}, {k}] B={block} {scale:?} row {r}: \
                             got {}, want {want}, error {err} > bound {tol}",
                            y[r]
                        );
                    }
                }
            }
        }
    }
}

/// Centroids that are integers with a ±127 in every codebook (s_c = 1) and
/// activations that are integers with a ±127 in every group (s_x = 1): the
/// int8 kernels represent them exactly and every sum is an integer below
/// 2²⁴, so the GEMV and the GEMM must reproduce the f64 product exactly.
#[test]
fn int8_products_are_exact_on_data_int8_represents() {
    let mut rng = Lcg(25);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 6) {
                if k > 1000 {
                    continue; // keep every sum below 2²⁴
                }
                let levels = 1usize << bits;
                let mut q = Quantized::new(&mut rng, (n, k), bits, block, |r| {
                    r.below(255) as f32 - 127.0
                });
                if !isa.fits(&q.matrix()) {
                    continue;
                }
                for (j, cb) in q.codebooks.chunks_mut(levels).enumerate() {
                    cb[j % levels] = f16::from_f32(if j % 2 == 0 { 127.0 } else { -127.0 });
                }
                let mut x: Vec<f32> = (0..k).map(|_| rng.below(255) as f32 - 127.0).collect();
                for g in (0..k).step_by(INT8_GROUP) {
                    x[g] = -127.0;
                }
                let dense = q.dequantized();
                let want: Vec<f32> = gemv_f64(&dense, (n, k), &x, &[], (1.0, 0.0))
                    .into_iter()
                    .map(|(v, _)| v as f32)
                    .collect();
                let what = format!("{isa:?} b={bits} [{n}, {k}] B={block}");
                let mut y = vec![f32::NAN; n];
                gemv_int8(isa, &q.matrix(), &x, &mut y, 1.0, 0.0);
                assert_equal(&y, &want, &what);
                // The GEMM, on X of three rows: this one, its negation, and
                // it again (each row its own integers and starts).
                let neg: Vec<f32> = x.iter().map(|v| -v).collect();
                let xs = [x.as_slice(), &neg, &x].concat();
                let mut c = vec![f32::NAN; 3 * n];
                gemm_int8(
                    isa,
                    &q.matrix(),
                    GemmRows {
                        m: 3,
                        x: &xs,
                        ldx: k,
                        c: &mut c,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                let minus: Vec<f32> = want.iter().map(|v| -v).collect();
                assert_equal(&c[..n], &want, &format!("{what} GEMM row 0"));
                assert_equal(&c[n..2 * n], &minus, &format!("{what} GEMM row 1"));
                assert_equal(&c[2 * n..], &want, &format!("{what} GEMM row 2"));
            }
        }
    }
}

#[test]
#[should_panic(expected = "int8 kernel (see Int8Isa::fits)")]
fn int8_gemv_refuses_matrices_it_does_not_fit() {
    let q = Quantized::random(&mut Lcg(26), (4, 104), 4, 64);
    let mut y = vec![0.0; 4];
    gemv_int8(Int8Isa::Scalar, &q.matrix(), &[0.5; 104], &mut y, 1.0, 0.0);
}

/// A GEMM row stores its Q8Vector's values, scales and sums (as starts
/// `−128·Σ xq`), the padding at xq = 0.
#[test]
fn q8_rows_hold_the_q8_vector_values() {
    let mut rng = Lcg(41);
    for len in [0, 1, 63, 64, 65, 200, 896] {
        let x: Vec<f32> = (0..len)
            .map(|i| rng.f32() * if i % 13 == 0 { 30.0 } else { 1.0 })
            .collect();
        let (v, row) = (Q8Vector::new(&x), Q8Row::new(&x));
        assert_eq!(row.k(), len);
        assert_eq!(row.values().len(), v.groups().len() * INT8_GROUP);
        assert_eq!(row.scales(), v.scales(), "K={len}");
        for i in 0..len {
            assert_eq!(row.value(i), v.value(i), "K={len} x[{i}]");
        }
        assert!(row.values()[len..].iter().all(|&q| q == 0), "K={len}");
        for (g, &start) in row.starts().iter().enumerate() {
            let sum: i32 = row.values()[g * INT8_GROUP..(g + 1) * INT8_GROUP]
                .iter()
                .map(|&q| q as i32)
                .sum();
            assert_eq!(start, -128 * sum, "K={len} group {g}");
        }
    }
}

/// The prefill product is within the GEMV's bound of the f64 product, row
/// by row: for every int8 kernel (the scalar twin included), b = 2..6, M
/// from 1 to past two tiles, X and C with row strides beyond K and N (C's
/// padding untouched), all (alpha, beta), with beta = 0 overwriting NaN.
#[test]
fn int8_gemm_is_within_the_quantization_bound_of_the_f64_product() {
    let mut rng = Lcg(42);
    let mut tiles = 0;
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let dense = q.dequantized();
                let ms: Vec<usize> = if isa == Int8Isa::Scalar {
                    vec![1, 3, 9]
                } else {
                    (1..=13).chain([2 * INT8_GEMM_ROWS + 3]).collect()
                };
                for m in ms {
                    let (ldx, ldc) = (k + rng.pick(&[0, 1, 64]), n + rng.pick(&[0, 2, 17]));
                    // Activations with outliers: the groups' scales differ.
                    let x: Vec<f32> = (0..(m - 1) * ldx + k)
                        .map(|i| rng.f32() * if i % 37 == 0 { 10.0 } else { 1.0 })
                        .collect();
                    for (alpha, beta) in SCALES {
                        let what = format!(
                            "{isa:?} b={bits} [{n}, {k}] B={block} m={m} ldx={ldx} ldc={ldc} alpha={alpha} beta={beta}"
                        );
                        let mut c: Vec<f32> = if beta == 0.0 {
                            vec![f32::NAN; (m - 1) * ldc + n]
                        } else {
                            rng.vec((m - 1) * ldc + n)
                        };
                        let c0 = c.clone();
                        gemm_int8(
                            isa,
                            &w,
                            GemmRows {
                                m,
                                x: &x,
                                ldx,
                                c: &mut c,
                                ldc,
                                alpha,
                                beta,
                            },
                        );
                        for r in 0..m {
                            let (xr, y0) = (&x[r * ldx..r * ldx + k], &c0[r * ldc..r * ldc + n]);
                            let want = gemv_f64(&dense, (n, k), xr, y0, (alpha, beta));
                            for (i, &(want, _)) in want.iter().enumerate() {
                                let beta_y = if beta == 0.0 {
                                    0.0
                                } else {
                                    beta as f64 * y0[i] as f64
                                };
                                let tol = int8_bound(&q, xr, i, alpha, beta_y);
                                let got = c[r * ldc + i];
                                assert!(
                                    (got as f64 - want).abs() <= tol,
                                    "{what} C[{r}, {i}]: got {got}, want {want}, bound {tol}"
                                );
                            }
                            if r + 1 < m {
                                assert_same(
                                    &c[r * ldc + n..(r + 1) * ldc],
                                    &c0[r * ldc + n..(r + 1) * ldc],
                                    &format!("{what}: wrote into C's padding after row {r}"),
                                );
                            }
                        }
                        tiles += 1;
                    }
                }
            }
        }
    }
    assert!(tiles > 100, "too few GEMM cases: {tiles}");
}

/// The SIMD GEMMs give exactly the scalar twin's C (which the test above
/// holds to the scalar GEMV), including on data that makes a lost lane
/// start or a swapped row visible: integer centroids with a ±127 in every
/// codebook and every row of X different.
#[test]
fn simd_int8_gemm_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(43);
    for isa in simd_int8_isas() {
        for bits in WIDTHS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 8) {
                let levels = 1usize << bits;
                let mut q = Quantized::random(&mut rng, (n, k), bits, block);
                if rng.below(2) == 0 {
                    q = Quantized::new(&mut rng, (n, k), bits, block, |r| {
                        r.below(255) as f32 - 127.0
                    });
                    for (j, cb) in q.codebooks.chunks_mut(levels).enumerate() {
                        cb[j % levels] = f16::from_f32(if j % 2 == 0 { 127.0 } else { -127.0 });
                    }
                }
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let m = rng.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 17]);
                let x = rng.vec(m * k);
                for (alpha, beta) in SCALES {
                    let c0 = start_y(&mut rng, m * n, beta);
                    let (mut got, mut want) = (c0.clone(), c0);
                    gemm_int8(
                        isa,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx: k,
                            c: &mut got,
                            ldc: n,
                            alpha,
                            beta,
                        },
                    );
                    gemm_int8(
                        Int8Isa::Scalar,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx: k,
                            c: &mut want,
                            ldc: n,
                            alpha,
                            beta,
                        },
                    );
                    let what =
                        format!("{isa:?} b={bits} [{n}, {k}] B={block} m={m} {alpha} {beta}");
                    assert_same(&got, &want, &what);
                    assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
                }
            }
        }
    }
}

/// Column blocks of C (rows of Ŵ, how ditto-rt splits the GEMM over its
/// threads) and row blocks compute what the whole product does.
#[test]
fn int8_gemm_blocks_match_the_whole_product() {
    let mut rng = Lcg(44);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            let ((n, k), block, m) = ((37, 192), 128, 11);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let w = q.matrix();
            if !isa.fits(&w) {
                continue;
            }
            let x = rng.vec(m * k);
            let c0 = rng.vec(m * n);
            let mut whole = c0.clone();
            gemm_int8(
                isa,
                &w,
                GemmRows {
                    m,
                    x: &x,
                    ldx: k,
                    c: &mut whole,
                    ldc: n,
                    alpha: 0.5,
                    beta: 1.5,
                },
            );
            let rows: Vec<Q8Row> = x.chunks(k).map(Q8Row::new).collect();
            let mut blocks = c0;
            for (r0, r1, c0, c1) in [(0, 4, 0, 5), (0, 4, 5, 37), (4, 11, 0, 20), (4, 11, 20, 37)] {
                // SAFETY: C [11, 37]: rows r0..r1 start at r0·n.
                unsafe {
                    gemm_block_int8(
                        isa,
                        &w,
                        Int8GemmBlock {
                            xq: &rows[r0..r1],
                            cols: (c0, c1),
                            c: blocks.as_mut_ptr().add(r0 * n),
                            ldc: n,
                        },
                        Scale {
                            alpha: 0.5,
                            beta: 1.5,
                        },
                    )
                };
            }
            assert_same(&blocks, &whole, &format!("{isa:?} b={bits}"));
        }
    }
}

/// A row's product does not depend on the rows multiplied with it: each
/// row of an M-row GEMM equals the 1-row GEMM of that row bit for bit,
/// whatever tile it falls in (speculative decoding verifies k drafted
/// tokens in one product and relies on this: docs/speculation.md).
#[test]
fn int8_gemm_rows_do_not_depend_on_the_other_rows() {
    let mut rng = Lcg(47);
    for isa in Int8Isa::available() {
        for bits in WIDTHS {
            let ((n, k), block) = ((45, 320), 64);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let w = q.matrix();
            if !isa.fits(&w) {
                continue;
            }
            for m in 1..=14 {
                let x = rng.vec(m * k);
                let mut all = vec![0.0; m * n];
                gemm_int8(
                    isa,
                    &w,
                    GemmRows {
                        m,
                        x: &x,
                        ldx: k,
                        c: &mut all,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                for (r, (x_r, all_r)) in x.chunks(k).zip(all.chunks(n)).enumerate() {
                    let mut one = vec![0.0; n];
                    gemm_int8(
                        isa,
                        &w,
                        GemmRows {
                            m: 1,
                            x: x_r,
                            ldx: k,
                            c: &mut one,
                            ldc: n,
                            alpha: 1.0,
                            beta: 0.0,
                        },
                    );
                    assert_same(all_r, &one, &format!("{isa:?} b={bits} m={m} row {r}"));
                }
            }
        }
    }
}

/// The GEMM on Ŵ in panels ([`Int8Panels`], [`gemm_block_panels`]) gives
/// the int8 GEMM's scalar twin's outputs bit for bit: every int8 kernel,
/// b = 2, 3, 4, K and N off the group and panel sizes, M = 1..13, a block of
/// columns cut inside a panel, all (alpha, beta).
#[test]
fn int8_gemm_from_panels_matches_the_gemm_bit_for_bit() {
    let mut rng = Lcg(48);
    let mut tried = 0;
    for isa in Int8Isa::available() {
        for bits in PANEL_BITS {
            for ((n, k), block) in int8_cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) || !Int8Panels::fit(&w) {
                    continue;
                }
                let codebooks = Int8Codebooks::new(&w);
                let panels = Int8Panels::new(&w, &codebooks);
                assert!(panels.fits(&w));
                // Filled in pieces (as over a pool): the same panels.
                let pieces = Int8Panels::new_with(&w, &codebooks, &|len, fill| {
                    let cut = len / 3;
                    fill(cut, len);
                    fill(0, cut);
                });
                assert_eq!(pieces, panels);
                tried +=
                    usize::from(isa == Int8Isa::Avx512Vnni || !Int8Isa::Avx512Vnni.runs_here());
                let m = 1 + rng.below(13);
                let rows: Vec<Q8Row> = (0..m).map(|_| Q8Row::new(&rng.vec(k))).collect();
                let cols = (rng.below(n.min(20)), n);
                for (alpha, beta) in SCALES {
                    let c0 = start_y(&mut rng, m * n, beta);
                    let scale = Scale { alpha, beta };
                    let (mut got, mut want) = (c0.clone(), c0);
                    // SAFETY: C [m, n] holds every row and these columns.
                    unsafe {
                        let block = |c: &mut Vec<f32>| Int8GemmBlock {
                            xq: &rows,
                            cols,
                            c: c.as_mut_ptr(),
                            ldc: n,
                        };
                        gemm_block_panels(isa, &w, &panels, block(&mut got), scale);
                        gemm_block_int8(Int8Isa::Scalar, &w, block(&mut want), scale);
                    }
                    let what = format!(
                        "{isa:?} b={bits} [{n}, {k}] B={block} m={m} cols {cols:?} {alpha} {beta}"
                    );
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
    assert!(tried >= 6, "only {tried} matrices tried");
}

/// Long rows and many rows of X, M and N off the tiles (GEMM_ROWS rows of
/// X by GEMM_COLS rows of Ŵ): the SIMD GEMMs against the scalar twin, bit
/// for bit.
#[test]
fn simd_int8_gemm_matches_its_scalar_twin_on_long_rows_and_many_tiles() {
    let mut rng = Lcg(46);
    for isa in simd_int8_isas() {
        for bits in WIDTHS {
            let n = 2 * INT8_GEMM_COLS + 11;
            let ((k, block), m) = ((4480, 32 << bits), 5 * INT8_GEMM_ROWS + 3);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let w = q.matrix();
            if !isa.fits(&w) {
                continue;
            }
            let x = rng.vec(m * k);
            let c0 = rng.vec(m * n);
            let (mut got, mut want) = (c0.clone(), c0);
            gemm_int8(
                isa,
                &w,
                GemmRows {
                    m,
                    x: &x,
                    ldx: k,
                    c: &mut got,
                    ldc: n,
                    alpha: 0.75,
                    beta: -0.5,
                },
            );
            gemm_int8(
                Int8Isa::Scalar,
                &w,
                GemmRows {
                    m,
                    x: &x,
                    ldx: k,
                    c: &mut want,
                    ldc: n,
                    alpha: 0.75,
                    beta: -0.5,
                },
            );
            assert_same(&got, &want, &format!("{isa:?} b={bits}"));
        }
    }
}

/// K = 0: every output is beta·C (0 where beta = 0), as the GEMV gives.
#[test]
fn int8_gemm_with_k_zero_scales_c() {
    let (idx, cb) = (Vec::<u8>::new(), Vec::<f16>::new());
    for bits in WIDTHS {
        let w = CbMatrix::new(3, 0, bits, 64, &idx, &cb).unwrap();
        for isa in Int8Isa::available() {
            if !isa.fits(&w) {
                continue;
            }
            let mut c = vec![1.0, 2.0, -4.0, 8.0, f32::NAN, 0.5];
            gemm_int8(
                isa,
                &w,
                GemmRows {
                    m: 2,
                    x: &[],
                    ldx: 0,
                    c: &mut c,
                    ldc: 3,
                    alpha: 2.0,
                    beta: 0.5,
                },
            );
            assert_same(&c[..3], &[0.5, 1.0, -2.0], &format!("{isa:?} b={bits}"));
            assert_eq!((c[3], c[5]), (4.0, 0.25), "{isa:?} b={bits}");
            let mut y = vec![8.0, f32::NAN, 0.5];
            gemv_int8(isa, &w, &[], &mut y, 2.0, 0.5);
            assert_same(&c[3..], &y, &format!("{isa:?} b={bits}: GEMM vs GEMV"));
        }
    }
}

#[test]
#[should_panic(expected = "int8 kernel (see Int8Isa::fits)")]
fn int8_gemm_refuses_matrices_it_does_not_fit() {
    let q = Quantized::random(&mut Lcg(45), (4, 104), 4, 64);
    let mut c = vec![0.0; 8];
    gemm_int8(
        Int8Isa::Scalar,
        &q.matrix(),
        GemmRows {
            m: 2,
            x: &[0.5; 208],
            ldx: 104,
            c: &mut c,
            ldc: 4,
            alpha: 1.0,
            beta: 0.0,
        },
    );
}
