//! The kernels the generated code calls (contracts.md §4): `ditto_rt_sgemv`
//! and `ditto_rt_sgemm`, BLIS semantics, pointers as byte addresses, strides
//! in elements.
//!
//! BLIS here is the serial build ([`crate::blis`]), and its gemv is
//! single-threaded anyway, so the runtime parallelizes: the output is cut
//! into one slice per thread of the one [`Pool`] (`--threads`), one BLIS call
//! per slice. Small products run whole on the calling thread.

use crate::{
    blis,
    pool::{pool, Pool},
};

/// Below this many multiply-adds a product is not worth a thread hand-off.
const MIN_PARALLEL_WORK: usize = 1 << 16;

/// A matrix in memory: its first element and its (row, column) strides, in
/// elements.
#[derive(Clone, Copy, Debug)]
pub struct Strided2<P> {
    pub at: P,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// A vector in memory: its first element and its stride, in elements.
#[derive(Clone, Copy, Debug)]
pub struct Strided1<P> {
    pub at: P,
    pub stride: isize,
}

/// `y := beta·y + alpha·A·x`: A is m × n, x has n entries, y has m (BLIS's
/// sgemv).
#[derive(Clone, Copy, Debug)]
pub struct Gemv {
    pub m: usize,
    pub n: usize,
    pub alpha: f32,
    pub a: Strided2<*const f32>,
    pub x: Strided1<*const f32>,
    pub beta: f32,
    pub y: Strided1<*mut f32>,
}

/// `C := beta·C + alpha·A·B`: A is m × k, B is k × n, C is m × n (BLIS's
/// sgemm).
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: Strided2<*const f32>,
    pub b: Strided2<*const f32>,
    pub beta: f32,
    pub c: Strided2<*mut f32>,
}

/// Computes `product` ([`Gemv`]), split over `pool`.
///
/// # Safety
/// The pointers must address arrays of those shapes and strides; y must not
/// overlap A or x.
pub unsafe fn sgemv(pool: &Pool, product: &Gemv) {
    let Gemv {
        m,
        n,
        alpha,
        a:
            Strided2 {
                at: a,
                row_stride: rsa,
                col_stride: csa,
            },
        x: Strided1 {
            at: x,
            stride: incx,
        },
        beta,
        y: Strided1 {
            at: y,
            stride: incy,
        },
    } = *product;
    if m == 0 {
        return;
    }
    let (a, x, y) = (a as usize, x as usize, y as usize);
    // Row-major A with contiguous x and y: the streaming kernel of
    // gemv_f32 where the CPU has AVX-512 (see there why not BLIS).
    let streaming = csa == 1
        && incx == 1
        && incy == 1
        && rsa >= n as isize
        && crate::gemv_f32::avx512_available();
    let rows = |r0: usize, r1: usize| {
        let a = (a as *const f32).wrapping_offset(r0 as isize * rsa);
        let y = (y as *mut f32).wrapping_offset(r0 as isize * incy);
        #[cfg(target_arch = "x86_64")]
        if streaming {
            // SAFETY: rows r0..r1 of A, x and y[r0..r1], per the caller;
            // the CPU supports AVX-512F.
            unsafe {
                crate::gemv_f32::rows_avx512(&crate::gemv_f32::Rows {
                    rows: r1 - r0,
                    n,
                    alpha,
                    a,
                    lda: rsa as usize,
                    x: x as *const f32,
                    beta,
                    y,
                })
            };
            return;
        }
        // SAFETY: rows r0..r1 of A and entries r0..r1 of y, per the caller.
        unsafe {
            blis::bli_sgemv(
                blis::NO_TRANSPOSE,
                blis::NO_CONJUGATE,
                (r1 - r0) as i64,
                n as i64,
                &alpha,
                a,
                rsa as i64,
                csa as i64,
                x as *const f32,
                incx as i64,
                &beta,
                y,
                incy as i64,
            )
        }
    };
    if m.saturating_mul(n) < MIN_PARALLEL_WORK {
        rows(0, m)
    } else {
        pool.for_each_slice(m, rows)
    }
}

/// Products of at most this many rows, f32 ([`sgemm`]) or on codebooks
/// (`codebook::cb_gemm`), are computed as the GEMV of each row, the
/// decode step's kernel: a row's product is then the same whether it is
/// computed alone or with up to this many others, so that appending k
/// tokens gives each the logits of k appends of one (the verification of
/// drafted tokens, docs/speculation.md), and a 1-row product costs the
/// decode step's.
pub const GEMV_ORDER_ROWS: usize = 16;

/// Computes `product` ([`Gemm`]), split over `pool`.
///
/// At most [`GEMV_ORDER_ROWS`] rows: as one [`sgemv`] per row. More: BLIS,
/// the slices cutting the rows of C (and A) when m >= n, else its columns
/// (and B's): a prefill's `hidden[T, d] x W^T` has few rows and many
/// columns.
///
/// # Safety
/// The pointers must address arrays of those shapes and strides; C must not
/// overlap A or B.
pub unsafe fn sgemm(pool: &Pool, product: &Gemm) {
    let Gemm {
        m,
        n,
        k,
        alpha,
        a:
            Strided2 {
                at: a,
                row_stride: rsa,
                col_stride: csa,
            },
        b:
            Strided2 {
                at: b,
                row_stride: rsb,
                col_stride: csb,
            },
        beta,
        c:
            Strided2 {
                at: c,
                row_stride: rsc,
                col_stride: csc,
            },
    } = *product;
    if m == 0 || n == 0 {
        return;
    }
    if m <= GEMV_ORDER_ROWS {
        // Row r of C is the GEMV Bᵀ·A[r, :]: what a product of that row
        // alone gives, bit for bit, however many rows come with it.
        for r in 0..m {
            let row = Gemv {
                m: n,
                n: k,
                alpha,
                a: Strided2 {
                    at: b,
                    row_stride: csb,
                    col_stride: rsb,
                },
                x: Strided1 {
                    at: a.wrapping_offset(r as isize * rsa),
                    stride: csa,
                },
                beta,
                y: Strided1 {
                    at: c.wrapping_offset(r as isize * rsc),
                    stride: csc,
                },
            };
            // SAFETY: row r of A and of C and all of B, per the caller.
            unsafe { sgemv(pool, &row) };
        }
        return;
    }
    let (a, b, c) = (a as usize, b as usize, c as usize);
    // One BLIS call on rows r0..r1 and columns c0..c1 of C.
    let block = |(r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        let a = (a as *const f32).wrapping_offset(r0 as isize * rsa);
        let b = (b as *const f32).wrapping_offset(c0 as isize * csb);
        let c = (c as *mut f32).wrapping_offset(r0 as isize * rsc + c0 as isize * csc);
        // SAFETY: a block of C and the rows of A / columns of B it needs.
        unsafe {
            blis::bli_sgemm(
                blis::NO_TRANSPOSE,
                blis::NO_TRANSPOSE,
                (r1 - r0) as i64,
                (c1 - c0) as i64,
                k as i64,
                &alpha,
                a,
                rsa as i64,
                csa as i64,
                b,
                rsb as i64,
                csb as i64,
                &beta,
                c,
                rsc as i64,
                csc as i64,
            )
        }
    };
    if m.saturating_mul(n).saturating_mul(k) < MIN_PARALLEL_WORK {
        block((0, m), (0, n))
    } else if m >= n {
        pool.for_each_slice(m, |r0, r1| block((r0, r1), (0, n)))
    } else {
        pool.for_each_slice(n, |c0, c1| block((0, m), (c0, c1)))
    }
}

/// `void ditto_rt_sgemv(int64_t m, int64_t n, float alpha, int64_t a, int64_t rsa, int64_t csa,
///                      int64_t x, int64_t incx, float beta, int64_t y, int64_t incy)`
///
/// # Safety
/// As [`sgemv`], with pointers given as addresses.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C ABI of contracts.md §4
pub unsafe extern "C" fn ditto_rt_sgemv(
    m: i64,
    n: i64,
    alpha: f32,
    a: i64,
    rsa: i64,
    csa: i64,
    x: i64,
    incx: i64,
    beta: f32,
    y: i64,
    incy: i64,
) {
    if m <= 0 || n < 0 {
        return;
    }
    sgemv(
        pool(),
        &Gemv {
            m: m as usize,
            n: n as usize,
            alpha,
            a: Strided2 {
                at: a as usize as *const f32,
                row_stride: rsa as isize,
                col_stride: csa as isize,
            },
            x: Strided1 {
                at: x as usize as *const f32,
                stride: incx as isize,
            },
            beta,
            y: Strided1 {
                at: y as usize as *mut f32,
                stride: incy as isize,
            },
        },
    )
}

/// `void ditto_rt_sgemm(int64_t m, int64_t n, int64_t k, float alpha,
///                      int64_t a, int64_t rsa, int64_t csa, int64_t b, int64_t rsb, int64_t csb,
///                      float beta, int64_t c, int64_t rsc, int64_t csc)`
///
/// # Safety
/// As [`sgemm`], with pointers given as addresses.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C ABI of contracts.md §4
pub unsafe extern "C" fn ditto_rt_sgemm(
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: i64,
    rsa: i64,
    csa: i64,
    b: i64,
    rsb: i64,
    csb: i64,
    beta: f32,
    c: i64,
    rsc: i64,
    csc: i64,
) {
    if m <= 0 || n <= 0 || k < 0 {
        return;
    }
    let matrix = |at: i64, rs: i64, cs: i64| Strided2 {
        at: at as usize as *const f32,
        row_stride: rs as isize,
        col_stride: cs as isize,
    };
    sgemm(
        pool(),
        &Gemm {
            m: m as usize,
            n: n as usize,
            k: k as usize,
            alpha,
            a: matrix(a, rsa, csa),
            b: matrix(b, rsb, csb),
            beta,
            c: Strided2 {
                at: c as usize as *mut f32,
                row_stride: rsc as isize,
                col_stride: csc as isize,
            },
        },
    )
}
