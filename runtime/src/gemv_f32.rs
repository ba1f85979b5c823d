//! The f32 matrix-vector product of a decode step, `y := beta·y + alpha·A·x`
//! for row-major `A` (contiguous rows of `n`, row stride `lda`) and
//! contiguous `x`: a streaming dot product per row.
//!
//! Why not BLIS here: on a CPU with AVX-512 the BLIS builds we link use their
//! AVX2 `dotxf` kernel for this shape, which streams ~25 GB/s on one core
//! against ~40 GB/s that the memory delivers (docs/benchmarks.md). The kernel
//! below reads each row once with 64-byte loads, four rows at a time so that
//! each load of `x` (which stays in L1) feeds four FMAs.
//!
//! [`rows_scalar`] is its scalar twin: it sums in the same 16 lanes and the
//! same order per lane, so the two agree up to the order of the final
//! 16-lane reduction (checked by the tests).

/// Rows `[0, rows)` of `y := beta·y + alpha·A·x`, A row-major with row
/// stride `lda`.
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub rows: usize,
    pub n: usize,
    pub alpha: f32,
    pub a: *const f32,
    pub lda: usize,
    pub x: *const f32,
    pub beta: f32,
    pub y: *mut f32,
}

/// Rows `[0, rows)` of the product, scalar: per row, 16 interleaved partial
/// sums over k, then their sum.
///
/// # Safety
/// `a` holds `rows` rows of `n` floats at stride `lda`; `x` holds `n`
/// floats; `y` holds `rows` floats.
pub unsafe fn rows_scalar(product: &Rows) {
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
    let x = unsafe { std::slice::from_raw_parts(x, n) };
    for r in 0..rows {
        // SAFETY: row r of A.
        let row = unsafe { std::slice::from_raw_parts(a.add(r * lda), n) };
        let mut lanes = [0f32; 16];
        for (k, (&w, &v)) in row.iter().zip(x).enumerate() {
            lanes[k % 16] = w.mul_add(v, lanes[k % 16]);
        }
        let dot: f32 = lanes.iter().sum();
        // SAFETY: entry r of y.
        let out = unsafe { &mut *y.add(r) };
        *out = if beta == 0.0 {
            alpha * dot
        } else {
            beta * *out + alpha * dot
        };
    }
}

/// Rows `[0, rows)` of the product with AVX-512F.
///
/// # Safety
/// As [`rows_scalar`], and the CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn rows_avx512(product: &Rows) {
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
    use std::arch::x86_64::*;
    let full = n / 16 * 16;
    let tail: __mmask16 = ((1u32 << (n - full)) - 1) as __mmask16;
    let mut r = 0;
    // Four rows at a time: one load of x feeds four FMAs.
    while r + 4 <= rows {
        // SAFETY (whole block): rows r..r+4 of A and x[0..n], per the caller;
        // masked loads read only the n - full tail elements.
        unsafe {
            let row = |i: usize| a.add((r + i) * lda);
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut k = 0;
            while k < full {
                let xv = _mm512_loadu_ps(x.add(k));
                acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(r0.add(k)), xv, acc[0]);
                acc[1] = _mm512_fmadd_ps(_mm512_loadu_ps(r1.add(k)), xv, acc[1]);
                acc[2] = _mm512_fmadd_ps(_mm512_loadu_ps(r2.add(k)), xv, acc[2]);
                acc[3] = _mm512_fmadd_ps(_mm512_loadu_ps(r3.add(k)), xv, acc[3]);
                k += 16;
            }
            if tail != 0 {
                let xv = _mm512_maskz_loadu_ps(tail, x.add(full));
                for (i, p) in [r0, r1, r2, r3].into_iter().enumerate() {
                    acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), xv, acc[i]);
                }
            }
            for (i, acc) in acc.into_iter().enumerate() {
                store(acc, alpha, beta, y.add(r + i));
            }
        }
        r += 4;
    }
    while r < rows {
        // SAFETY: row r of A and x, as above.
        unsafe {
            let p = a.add(r * lda);
            let mut acc = _mm512_setzero_ps();
            let mut k = 0;
            while k < full {
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(p.add(k)), _mm512_loadu_ps(x.add(k)), acc);
                k += 16;
            }
            if tail != 0 {
                let xv = _mm512_maskz_loadu_ps(tail, x.add(full));
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), xv, acc);
            }
            store(acc, alpha, beta, y.add(r));
        }
        r += 1;
    }
}

/// `*out := beta·*out + alpha·Σ acc` (beta = 0 overwrites).
///
/// # Safety
/// `out` is valid; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store(acc: std::arch::x86_64::__m512, alpha: f32, beta: f32, out: *mut f32) {
    let dot = std::arch::x86_64::_mm512_reduce_add_ps(acc);
    // SAFETY: per the caller.
    let out = unsafe { &mut *out };
    *out = if beta == 0.0 {
        alpha * dot
    } else {
        beta * *out + alpha * dot
    };
}

/// Whether [`rows_avx512`] runs on this CPU.
pub fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
