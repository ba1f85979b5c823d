//! The streaming f32 GEMV: AVX-512 against its scalar twin and against an
//! f64 product, on shapes around the vector width.

use ditto_rt::gemv_f32::{avx512_available, rows_scalar, Rows};

/// A small deterministic generator (xorshift64*), values in [-1, 1).
fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// `product` in f64, from what its pointers address before a kernel runs.
///
/// # Safety
/// As for [`rows_scalar`].
unsafe fn reference(product: &Rows) -> Vec<f64> {
    let Rows {
        rows,
        n,
        alpha,
        a,
        lda,
        x,
        beta,
        y,
    } = *product;
    // SAFETY: sizes as the caller guarantees.
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(x, n),
            std::slice::from_raw_parts(y, rows),
        )
    };
    (0..rows)
        .map(|r| {
            // SAFETY: row r of A.
            let row = unsafe { std::slice::from_raw_parts(a.add(r * lda), n) };
            let dot: f64 = (0..n).map(|k| row[k] as f64 * x[k] as f64).sum();
            beta as f64 * y[r] as f64 + alpha as f64 * dot
        })
        .collect()
}

const SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (3, 15),
    (4, 16),
    (5, 17),
    (9, 33),
    (13, 64),
    (7, 896),
    (33, 4864),
];

#[test]
fn scalar_twin_matches_an_f64_product() {
    for &(m, n) in SHAPES {
        let lda = n + 3;
        let (a, x) = (values(1, m * lda), values(2, n));
        for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
            let mut y = values(3, m);
            let product = Rows {
                rows: m,
                n,
                alpha,
                a: a.as_ptr(),
                lda,
                x: x.as_ptr(),
                beta,
                y: y.as_mut_ptr(),
            };
            let want = unsafe { reference(&product) };
            unsafe { rows_scalar(&product) };
            for (got, want) in y.iter().zip(&want) {
                let bound = 4.0 * (n as f64 + 2.0) * f32::EPSILON as f64 * (1.0 + want.abs()) * 2.0;
                assert!(
                    (*got as f64 - want).abs() <= bound,
                    "{m}x{n}: {got} vs {want}"
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_matches_its_scalar_twin() {
    if !avx512_available() {
        eprintln!("this CPU has no AVX-512F: only the scalar twin runs here");
        return;
    }
    for &(m, n) in SHAPES {
        let lda = n + 5;
        let (a, x) = (values(4, m * lda), values(5, n));
        for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0)] {
            let y0 = values(6, m);
            let (mut simd, mut scalar) = (y0.clone(), y0.clone());
            unsafe {
                ditto_rt::gemv_f32::rows_avx512(&Rows {
                    rows: m,
                    n,
                    alpha,
                    a: a.as_ptr(),
                    lda,
                    x: x.as_ptr(),
                    beta,
                    y: simd.as_mut_ptr(),
                });
                rows_scalar(&Rows {
                    rows: m,
                    n,
                    alpha,
                    a: a.as_ptr(),
                    lda,
                    x: x.as_ptr(),
                    beta,
                    y: scalar.as_mut_ptr(),
                });
            }
            // Same 16 lanes in the same order; only the final 16-way sum differs.
            for (s, t) in simd.iter().zip(&scalar) {
                assert!(
                    (s - t).abs() <= 16.0 * f32::EPSILON * (1.0 + t.abs()) * 4.0,
                    "{m}x{n}: {s} vs {t}"
                );
            }
        }
        // Integer data: every partial sum exact, so the results are equal.
        let ai: Vec<f32> = (0..m * lda).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let xi: Vec<f32> = (0..n).map(|i| ((i * 3) % 5) as f32 - 2.0).collect();
        let (mut simd, mut scalar) = (vec![f32::NAN; m], vec![f32::NAN; m]);
        unsafe {
            ditto_rt::gemv_f32::rows_avx512(&Rows {
                rows: m,
                n,
                alpha: 1.0,
                a: ai.as_ptr(),
                lda,
                x: xi.as_ptr(),
                beta: 0.0,
                y: simd.as_mut_ptr(),
            });
            rows_scalar(&Rows {
                rows: m,
                n,
                alpha: 1.0,
                a: ai.as_ptr(),
                lda,
                x: xi.as_ptr(),
                beta: 0.0,
                y: scalar.as_mut_ptr(),
            });
        }
        assert_eq!(simd, scalar, "{m}x{n}, integer data, beta 0 over NaN");
    }
}
