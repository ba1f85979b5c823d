//! The codebook kernels against independent references, on the calling
//! thread (the split over the thread pool and the C adapters are tested in
//! ditto-rt's tests/codebook.rs). These run on every target the kernels
//! have: x86-64 natively, aarch64 under qemu-user (`.ci/test`).
//!
//! * The reference Ŵ is built from docs/codebook-format.md alone: the
//!   test draws indices and codebooks, packs the indices with its own bit
//!   writer, and reads them back with its own bit reader (`common`).
//! * Every SIMD kernel (AVX2, AVX-512, NEON: whichever this CPU runs)
//!   against its scalar twin, **bit for bit**: the twin sums in the SIMD
//!   kernel's order (GEMV: `Isa::twin`, the same partial sums and
//!   reduction; GEMM: one fused multiply-add chain per output in k order,
//!   whatever the tile; dequantize: exact).
//! * Every kernel against dequantize-then-f64 products, within the f32
//!   summation bound; and, exactly, on integer-valued data whose every
//!   partial sum is exact in f32 (so that one wrong lookup cannot hide in a
//!   tolerance).
//! * gemm against m gemv calls (within the bound: different orders).
//! * The row-level entry points ditto-rt splits products with, on slices,
//!   against the whole products.

mod common;

use common::*;
use ditto_kernels::codebook::{
    decode_row, dequantize, gemm, gemm_block, gemv, gemv_rows, CbMatrix, GemmBlock, GemmRows, Isa,
    Scale, SUPPORTED_BITS,
};
use half::f16;

#[test]
fn the_targets_simd_kernels_are_detected() {
    let best = Isa::detected();
    assert_eq!(Isa::available().last(), Some(&best));
    assert_eq!(Isa::available()[0], Isa::SCALAR);
    #[cfg(target_arch = "aarch64")]
    assert_eq!(best, Isa::Neon, "every aarch64 Linux CPU has NEON");
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        assert!(matches!(best, Isa::Avx2 | Isa::Avx512), "{best:?}");
    }
    eprintln!("codebook kernels tested here: {:?}", Isa::available());
}

#[test]
fn simd_gemv_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(1);
    for isa in simd_isas() {
        let twin = isa.twin();
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 20) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                let x = rng.vec(k);
                for (alpha, beta) in SCALES {
                    let y0 = start_y(&mut rng, n, beta);
                    let (mut got, mut want) = (y0.clone(), y0);
                    gemv(isa, &w, &x, &mut got, alpha, beta);
                    gemv(twin, &w, &x, &mut want, alpha, beta);
                    let what = format!(
                        "{isa:?} gemv b={bits} [{n}, {k}] B={block} alpha={alpha} beta={beta}"
                    );
                    assert_same(&got, &want, &what);
                    assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
                }
            }
        }
    }
}

#[test]
fn simd_gemv_matches_its_twin_on_decode_shapes() {
    // Whole 64-weight groups, direct reads up to the end of the stream.
    let mut rng = Lcg(2);
    for isa in simd_isas() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in [((64, 896), 256), ((40, 512), 64), ((9, 2048), 4096)] {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let x = rng.vec(k);
                let (mut got, mut want) = (vec![0.0; n], vec![0.0; n]);
                gemv(isa, &q.matrix(), &x, &mut got, 1.0, 0.0);
                gemv(isa.twin(), &q.matrix(), &x, &mut want, 1.0, 0.0);
                assert_same(
                    &got,
                    &want,
                    &format!("{isa:?} b={bits} [{n}, {k}] B={block}"),
                );
            }
        }
    }
}

#[test]
fn every_gemv_matches_dequantize_then_f64() {
    let mut rng = Lcg(3);
    let scalars = [8, 16, 32, 64].map(|lanes| Isa::Scalar { lanes });
    for isa in scalars.into_iter().chain(simd_isas()) {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let dense = q.dequantized();
                let x = rng.vec(k);
                for scale in SCALES {
                    let y0 = start_y(&mut rng, n, scale.1);
                    let mut y = y0.clone();
                    gemv(isa, &q.matrix(), &x, &mut y, scale.0, scale.1);
                    for (r, (want, mag)) in gemv_f64(&dense, (n, k), &x, &y0, scale)
                        .into_iter()
                        .enumerate()
                    {
                        let what =
                            format!("{isa:?} b={bits} [{n}, {k}] B={block} {scale:?} row {r}");
                        assert_close(y[r], want, mag, k, &what);
                    }
                }
            }
        }
    }
}

/// Integer codebooks and inputs: every partial sum is exact in f32, so all
/// kernels must reproduce the reference exactly.
#[test]
fn every_kernel_is_exact_on_integer_data() {
    let mut rng = Lcg(4);
    for isa in Isa::available() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 8) {
                let q = Quantized::new(&mut rng, (n, k), bits, block, |r| r.ints(1, 8)[0]);
                let dense = q.dequantized();
                let x = rng.ints(k, 4);
                let want: Vec<f32> = gemv_f64(&dense, (n, k), &x, &[], (1.0, 0.0))
                    .into_iter()
                    .map(|(v, _)| v as f32)
                    .collect();
                let what = format!("{isa:?} b={bits} [{n}, {k}] B={block}");
                let mut y = vec![f32::NAN; n];
                gemv(isa, &q.matrix(), &x, &mut y, 1.0, 0.0);
                assert_equal(&y, &want, &format!("gemv {what}"));

                let mut out = vec![f32::NAN; n * k];
                dequantize(isa, &q.matrix(), &mut out);
                assert_equal(&out, &dense, &format!("dequantize {what}"));

                // GEMM with X = [x; 2x; -x], C = X·Ŵᵀ.
                let m = 3;
                let xs: Vec<f32> = [1.0, 2.0, -1.0]
                    .iter()
                    .flat_map(|s| x.iter().map(move |v| s * v))
                    .collect();
                let mut c = vec![f32::NAN; m * n];
                gemm(
                    isa,
                    &q.matrix(),
                    GemmRows {
                        m,
                        x: &xs,
                        ldx: k,
                        c: &mut c,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                let want_c: Vec<f32> = [1.0, 2.0, -1.0]
                    .iter()
                    .flat_map(|s| want.iter().map(move |v| s * v))
                    .collect();
                assert_equal(&c, &want_c, &format!("gemm {what}"));
            }
        }
    }
}

#[test]
fn simd_dequantize_matches_scalar_and_the_reference() {
    let mut rng = Lcg(5);
    for isa in simd_isas() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 16) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let (mut got, mut scalar) = (vec![0.0; n * k], vec![0.0; n * k]);
                dequantize(isa, &q.matrix(), &mut got);
                dequantize(Isa::SCALAR, &q.matrix(), &mut scalar);
                let what = format!("{isa:?} dequantize b={bits} [{n}, {k}] B={block}");
                assert_same(&got, &scalar, &what);
                assert_same(&got, &q.dequantized(), &what);
            }
        }
    }
}

#[test]
fn simd_gemm_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(6);
    for isa in simd_isas() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 8) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let (m, xpad, cpad) = rng.pick(&GEMM_ROWS);
                let (ldx, ldc) = (k + xpad, n + cpad);
                let x = rng.vec((m - 1) * ldx + k);
                let (alpha, beta) = rng.pick(&SCALES);
                let c0 = if beta == 0.0 {
                    vec![f32::NAN; (m - 1) * ldc + n]
                } else {
                    rng.vec((m - 1) * ldc + n)
                };
                let (mut got, mut want) = (c0.clone(), c0);
                let w = q.matrix();
                gemm(
                    isa,
                    &w,
                    GemmRows {
                        m,
                        x: &x,
                        ldx,
                        c: &mut got,
                        ldc,
                        alpha,
                        beta,
                    },
                );
                gemm(
                    Isa::SCALAR,
                    &w,
                    GemmRows {
                        m,
                        x: &x,
                        ldx,
                        c: &mut want,
                        ldc,
                        alpha,
                        beta,
                    },
                );
                let what = format!(
                    "{isa:?} gemm b={bits} m={m} [{n}, {k}] B={block} ld {ldx}/{ldc} {alpha}/{beta}"
                );
                assert_same(&got, &want, &what);
            }
        }
    }
}

#[test]
fn gemm_matches_gemv_per_row_and_the_f64_reference() {
    let mut rng = Lcg(7);
    for isa in Isa::available() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 3) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let dense = q.dequantized();
                for (m, xpad, cpad) in GEMM_ROWS {
                    let (ldx, ldc) = (k + xpad, n + cpad);
                    let x = rng.vec((m - 1) * ldx + k);
                    let scale = rng.pick(&SCALES);
                    let c0 = rng.vec((m - 1) * ldc + n);
                    let mut c = c0.clone();
                    gemm(
                        isa,
                        &q.matrix(),
                        GemmRows {
                            m,
                            x: &x,
                            ldx,
                            c: &mut c,
                            ldc,
                            alpha: scale.0,
                            beta: scale.1,
                        },
                    );
                    for r in 0..m {
                        let xr = &x[r * ldx..r * ldx + k];
                        let y0 = &c0[r * ldc..r * ldc + n];
                        let mut y = y0.to_vec();
                        gemv(isa, &q.matrix(), xr, &mut y, scale.0, scale.1);
                        let want = gemv_f64(&dense, (n, k), xr, y0, scale);
                        for j in 0..n {
                            let what = format!(
                                "{isa:?} gemm b={bits} m={m} [{n}, {k}] B={block} {scale:?} C[{r}, {j}]"
                            );
                            let (f64_value, mag) = want[j];
                            let got = c[r * ldc + j];
                            assert_close(got, f64_value, mag, k, &format!("{what} vs f64"));
                            assert_close(
                                got,
                                y[j] as f64,
                                2.0 * mag,
                                k,
                                &format!("{what} vs gemv"),
                            );
                        }
                        // The padding between rows of C is left alone.
                        if r + 1 < m {
                            assert_same(
                                &c[r * ldc + n..(r + 1) * ldc],
                                &c0[r * ldc + n..(r + 1) * ldc],
                                "C padding",
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The row-level entry points compute any slice of a product as the whole
/// product does: what lets ditto-rt split products over threads.
#[test]
fn row_slices_match_the_whole_product() {
    let mut rng = Lcg(8);
    for isa in Isa::available() {
        for bits in SUPPORTED_BITS {
            let ((n, k), block) = ((23, 120), 64);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let w = q.matrix();
            let x = rng.vec(k);
            let y0 = rng.vec(n);
            let mut whole = y0.clone();
            gemv(isa, &w, &x, &mut whole, 0.5, 1.5);
            let mut sliced = y0;
            let (top, bottom) = sliced.split_at_mut(9);
            let scale = Scale {
                alpha: 0.5,
                beta: 1.5,
            };
            gemv_rows(isa, &w, &x, top, 0, scale);
            gemv_rows(isa, &w, &x, bottom, 9, scale);
            assert_same(&sliced, &whole, &format!("{isa:?} b={bits} gemv_rows"));

            let mut dense = vec![0.0; n * k];
            dequantize(isa, &w, &mut dense);
            let mut row = vec![f32::NAN; k];
            decode_row(isa, &w, n - 1, &mut row);
            assert_same(
                &row,
                &dense[(n - 1) * k..],
                &format!("{isa:?} b={bits} decode_row"),
            );

            let m = 11;
            let xs = rng.vec(m * k);
            let mut whole = vec![0.0; m * n];
            gemm(
                isa,
                &w,
                GemmRows {
                    m,
                    x: &xs,
                    ldx: k,
                    c: &mut whole,
                    ldc: n,
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            let mut blocks = vec![f32::NAN; m * n];
            for (rows, cols) in [((0, 4), (0, n)), ((4, m), (0, 5)), ((4, m), (5, n))] {
                // SAFETY: X [m, K] and C [m, N] are whole; one thread.
                unsafe {
                    gemm_block(
                        isa,
                        &w,
                        GemmBlock {
                            rows,
                            cols,
                            x: xs.as_ptr(),
                            ldx: k,
                            c: blocks.as_mut_ptr(),
                            ldc: n,
                        },
                        Scale {
                            alpha: 1.0,
                            beta: 0.0,
                        },
                    )
                };
            }
            assert_same(&blocks, &whole, &format!("{isa:?} b={bits} gemm_block"));
        }
    }
}

/// A SIMD tail reads zero-padded index bytes past a segment's end, which
/// look up entry 0: with entry 0 infinite and never indexed, a lane past
/// the end that reached a sum would make it NaN.
#[test]
fn padding_lanes_never_reach_the_sums() {
    let mut rng = Lcg(9);
    for isa in Isa::available() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 4) {
                let mut q = Quantized::random(&mut rng, (n, k), bits, block);
                let indices: Vec<usize> = (0..n * k)
                    .map(|i| index(&q.stream, i, bits).max(1))
                    .collect();
                q.stream = pack(&indices, bits);
                for entry in q.codebooks.iter_mut().step_by(1 << bits) {
                    *entry = f16::INFINITY;
                }
                let what = format!("{isa:?} b={bits} [{n}, {k}] B={block}");
                let x = rng.vec(k);
                let mut y = vec![0.0; n];
                gemv(isa, &q.matrix(), &x, &mut y, 1.0, 0.0);
                let mut want = vec![0.0; n];
                gemv(isa.twin(), &q.matrix(), &x, &mut want, 1.0, 0.0);
                assert_same(&y, &want, &format!("gemv {what}"));
                assert!(y.iter().all(|v| v.is_finite()), "gemv {what}: {y:?}");

                let mut out = vec![0.0; n * k];
                dequantize(isa, &q.matrix(), &mut out);
                assert_same(&out, &q.dequantized(), &format!("dequantize {what}"));

                let m = 5;
                let xs = rng.vec(m * k);
                let mut c = vec![0.0; m * n];
                gemm(
                    isa,
                    &q.matrix(),
                    GemmRows {
                        m,
                        x: &xs,
                        ldx: k,
                        c: &mut c,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                assert!(c.iter().all(|v| v.is_finite()), "gemm {what}");
            }
        }
    }
}

#[test]
fn bad_formats_are_refused() {
    let idx = [0u8; 64];
    let cb = [f16::ZERO; 256];
    // [4, 16] at b = 4, B = 8: 32 index bytes, 8 blocks × 16 entries.
    assert!(CbMatrix::new(4, 16, 4, 8, &idx[..32], &cb[..128]).is_ok());
    let refused =
        |(n, k, bits, block, bytes, entries): (usize, usize, usize, usize, usize, usize)| {
            CbMatrix::new(n, k, bits, block, &idx[..bytes], &cb[..entries])
                .unwrap_err()
                .0
        };
    assert!(refused((4, 16, 7, 8, 56, 256)).contains("bits = 7"));
    assert!(refused((4, 16, 4, 12, 32, 96)).contains("multiple of 8"));
    assert!(refused((4, 3, 4, 8, 6, 32)).contains("K·b"));
    assert!(refused((4, 16, 4, 8, 31, 128)).contains("31 index bytes"));
    assert!(refused((4, 16, 4, 8, 32, 127)).contains("127 codebook entries"));
}
