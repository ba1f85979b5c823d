//! Products with codebook-quantized weights (docs/codebook-format.md),
//! computed without materializing Ŵ in f32:
//!
//! ```text
//! cb_gemv:       y := beta·y + alpha·Ŵ·x        Ŵ [N, K], x [K], y [N]        (decode)
//! cb_gemm:       C := beta·C + alpha·X·Ŵᵀ       X [M, K], C [M, N]            (prefill)
//! cb_dequantize: out := Ŵ                      [N, K]   (Ditto's recipe: then BLIS)
//! ```
//!
//! Every kernel walks Ŵ one *segment* at a time (a row's run of weights
//! sharing one codebook, [`layout`]): the block's 2^b centroids are widened
//! to f32 once and held in registers, and the index bytes are streamed once
//! and unpacked in registers. The GEMV sums straight into accumulators; the
//! GEMM decodes a panel of Ŵ rows into a small buffer that all M rows of X
//! then reuse ([`gemm`]).
//!
//! | file | concern |
//! |---|---|
//! | `layout.rs` | the validated matrix view, segments, the shared epilogue and reduction order |
//! | `scalar.rs` | the scalar kernels: the fallback, and the twins of the SIMD kernels |
//! | `avx2.rs` | x86-64 AVX2 + FMA + F16C (8 lanes) |
//! | `avx512.rs` | x86-64 AVX-512 F + BW (16 lanes) |
//! | `gemm.rs` | the panel-by-panel GEMM driver shared by all of them |
//! | `abi.rs` | the C-interface adapters the generated code calls |
//!
//! The instruction set is picked once per process ([`Isa::detected`]);
//! every kernel splits its output over the runtime's one thread pool
//! ([`crate::kernels::Pool`]), like the BLIS kernels.

pub mod abi;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod gemm;
mod layout;
mod scalar;

use std::sync::OnceLock;

pub use layout::{CbMatrix, FormatError, SUPPORTED_BITS};

use crate::kernels::Pool;
use gemm::gemm_block;

/// Below this many multiply-adds a product runs whole on the calling thread
/// (as in `kernels.rs`).
const MIN_PARALLEL_WORK: usize = 1 << 16;

/// Which kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The scalar kernels; the GEMV sums in `lanes` interleaved partial sums
    /// (8, 16, 32 or 64). With a SIMD kernel's [`Isa::gemv_lanes`] they
    /// reproduce its results bit for bit ([`Isa::twin`]).
    Scalar { lanes: usize },
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F + BW (with AVX2, FMA, F16C).
    Avx512,
}

impl Isa {
    /// The scalar fallback.
    pub const SCALAR: Isa = Isa::Scalar { lanes: 8 };

    /// The best kernels this CPU runs, detected once.
    pub fn detected() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let available = Isa::available();
            available[available.len() - 1]
        })
    }

    /// Every kind of kernel this CPU runs, the scalar ones first, the best last.
    pub fn available() -> Vec<Isa> {
        [Isa::SCALAR, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect()
    }

    /// Whether this CPU has the instructions (`is_x86_feature_detected!`
    /// caches what it finds).
    pub fn runs_here(self) -> bool {
        match self {
            Isa::Scalar { .. } => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.runs_here()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Partial sums the GEMV keeps per row (accumulator registers × lanes).
    pub fn gemv_lanes(self) -> usize {
        match self {
            Isa::Scalar { lanes } => lanes,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::GEMV_LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::GEMV_LANES,
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!(),
        }
    }

    /// The scalar kernels that sum in this one's order.
    pub fn twin(self) -> Isa {
        Isa::Scalar {
            lanes: self.gemv_lanes(),
        }
    }

    fn check(self) {
        match self {
            Isa::Scalar { lanes } => assert!(
                [8, 16, 32, 64].contains(&lanes),
                "scalar codebook kernels sum in 8, 16, 32 or 64 lanes, not {lanes}"
            ),
            simd => assert!(
                simd.runs_here(),
                "this CPU cannot run the {simd:?} codebook kernels"
            ),
        }
    }
}

/// GEMV rows `r0 .. r0 + y.len()` with `isa` (checked).
fn gemv_rows(isa: Isa, m: &CbMatrix, x: &[f32], y: &mut [f32], r0: usize, alpha: f32, beta: f32) {
    match isa {
        Isa::Scalar { lanes: 8 } => scalar::gemv_rows::<8>(m, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 16 } => scalar::gemv_rows::<16>(m, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 32 } => scalar::gemv_rows::<32>(m, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 64 } => scalar::gemv_rows::<64>(m, x, y, r0, alpha, beta),
        Isa::Scalar { .. } => unreachable!("checked"),
        // SAFETY: `check` found the features; x has K entries.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::gemv_rows(m, x, y, r0, alpha, beta) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::gemv_rows(m, x, y, r0, alpha, beta) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("checked"),
    }
}

/// Row `row` of Ŵ into `out` with `isa` (checked).
fn decode_row(isa: Isa, m: &CbMatrix, row: usize, out: &mut [f32]) {
    match isa {
        Isa::Scalar { .. } => scalar::decode_range(m, row, 0, out),
        // SAFETY: `check` found the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::decode_range(m, row, 0, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::decode_range(m, row, 0, out) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("checked"),
    }
}

/// y := beta·y + alpha·Ŵ·x (x [K], y [N]); `beta = 0` overwrites y.
pub fn cb_gemv(pool: &Pool, w: &CbMatrix, x: &[f32], y: &mut [f32], alpha: f32, beta: f32) {
    cb_gemv_with(Isa::detected(), pool, w, x, y, alpha, beta)
}

/// [`cb_gemv`] with the given kernels.
pub fn cb_gemv_with(
    isa: Isa,
    pool: &Pool,
    w: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    alpha: f32,
    beta: f32,
) {
    isa.check();
    let (n, k) = (w.n(), w.k());
    assert_eq!(
        x.len(),
        k,
        "cb_gemv: x has {} entries, Ŵ has K = {k}",
        x.len()
    );
    assert_eq!(
        y.len(),
        n,
        "cb_gemv: y has {} entries, Ŵ has N = {n}",
        y.len()
    );
    let y_at = y.as_mut_ptr() as usize;
    let rows = |r0: usize, r1: usize| {
        // SAFETY: slices of y are disjoint across calls.
        let y = unsafe { std::slice::from_raw_parts_mut((y_at as *mut f32).add(r0), r1 - r0) };
        gemv_rows(isa, w, x, y, r0, alpha, beta)
    };
    if n.saturating_mul(k) < MIN_PARALLEL_WORK {
        rows(0, n)
    } else {
        pool.for_each_slice(n, rows)
    }
}

/// C := beta·C + alpha·X·Ŵᵀ for X [m, K] (row r at `x[r·ldx ..]`) and
/// C [m, N] (row r at `c[r·ldc ..]`); `beta = 0` overwrites C.
#[allow(clippy::too_many_arguments)]
pub fn cb_gemm(
    pool: &Pool,
    m: usize,
    w: &CbMatrix,
    x: &[f32],
    ldx: usize,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    cb_gemm_with(Isa::detected(), pool, m, w, x, ldx, c, ldc, alpha, beta)
}

/// [`cb_gemm`] with the given kernels.
#[allow(clippy::too_many_arguments)]
pub fn cb_gemm_with(
    isa: Isa,
    pool: &Pool,
    m: usize,
    w: &CbMatrix,
    x: &[f32],
    ldx: usize,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    isa.check();
    let (n, k) = (w.n(), w.k());
    if m == 0 {
        return;
    }
    assert!(
        x.len() >= (m - 1) * ldx + k,
        "cb_gemm: X [{m}, {k}] with row stride {ldx} needs {} values, has {}",
        (m - 1) * ldx + k,
        x.len()
    );
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "cb_gemm: C [{m}, {n}] with row stride {ldc} does not fit in {} values",
        c.len()
    );
    let (x_at, c_at) = (x.as_ptr() as usize, c.as_mut_ptr() as usize);
    let block = |rows: (usize, usize), cols: (usize, usize)| {
        let (x, c) = (x_at as *const f32, c_at as *mut f32);
        // SAFETY: X and C hold the rows checked above; each call writes its
        // own block of C; the ISA's features were checked.
        unsafe {
            match isa {
                Isa::Scalar { .. } => {
                    gemm_block::<scalar::ScalarGemm>(w, rows, cols, x, ldx, c, ldc, alpha, beta)
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => {
                    gemm_block::<avx2::Avx2Gemm>(w, rows, cols, x, ldx, c, ldc, alpha, beta)
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => {
                    gemm_block::<avx512::Avx512Gemm>(w, rows, cols, x, ldx, c, ldc, alpha, beta)
                }
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("checked"),
            }
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

/// out := Ŵ ([N, K] row-major).
pub fn cb_dequantize(pool: &Pool, w: &CbMatrix, out: &mut [f32]) {
    cb_dequantize_with(Isa::detected(), pool, w, out)
}

/// [`cb_dequantize`] with the given kernels.
pub fn cb_dequantize_with(isa: Isa, pool: &Pool, w: &CbMatrix, out: &mut [f32]) {
    isa.check();
    let (n, k) = (w.n(), w.k());
    assert_eq!(
        out.len(),
        n * k,
        "cb_dequantize: out has {} values, Ŵ [{n}, {k}]",
        out.len()
    );
    let out_at = out.as_mut_ptr() as usize;
    let rows = |r0: usize, r1: usize| {
        for row in r0..r1 {
            // SAFETY: rows of out are disjoint across calls.
            let out =
                unsafe { std::slice::from_raw_parts_mut((out_at as *mut f32).add(row * k), k) };
            decode_row(isa, w, row, out);
        }
    };
    if n.saturating_mul(k) < MIN_PARALLEL_WORK {
        rows(0, n)
    } else {
        pool.for_each_slice(n, rows)
    }
}
