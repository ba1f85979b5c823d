//! Products with codebook-quantized weights (docs/codebook-format.md),
//! computed without materializing Ŵ in f32, on the calling thread:
//!
//! ```text
//! gemv:       y := beta·y + alpha·Ŵ·x        Ŵ [N, K], x [K], y [N]        (decode)
//! gemm:       C := beta·C + alpha·X·Ŵᵀ       X [M, K], C [M, N]            (prefill)
//! dequantize: out := Ŵ                      [N, K]   (Ditto's recipe: then BLIS)
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
//! | `int8.rs` | the GEMV and GEMM with int8 activations: [`Q8Vector`], [`Q8Row`], the dispatch ([`Int8Isa`]) |
//! | `avx512_vnni.rs` | their x86-64 kernels (GEMV and GEMM): AVX-512 VBMI + VNNI (b = 2..6) |
//! | `avx2_vnni.rs` | the GEMV's x86-64 kernel for AVX2 + AVX-VNNI CPUs (b = 4) |
//! | `neon.rs` | aarch64 NEON (4 lanes, 32 registers) |
//! | `gemm.rs` | the panel-by-panel GEMM driver shared by all of them |
//!
//! The GEMV also comes with int8 activations ([`gemv_rows_int8`]): x
//! quantized to int8 in groups of 64, codebooks to int8 per segment,
//! integer dot products (`vpdpbusd`), as llama.cpp's Q8 products; faster,
//! and no longer the exact f32 product (`int8.rs` has the details). So
//! does the GEMM ([`gemm_block_int8`]), each output bit for bit the int8
//! GEMV's for that row of X (AVX-512 VBMI + VNNI kernel in
//! `avx512_vnni.rs`; the scalar twin elsewhere).

//! The instruction set is picked once per process ([`Isa::detected`]). The
//! row-level entry points ([`gemv_rows`], [`decode_row`], [`gemm_block`])
//! compute one slice of a product, so that `ditto-rt` can split a product
//! over its thread pool; [`gemv`], [`gemm`] and [`dequantize`] compute a
//! whole product on the calling thread.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_vnni;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_panels;
#[cfg(target_arch = "x86_64")]
mod avx512_vnni;
mod gemm;
mod int8;
mod layout;
#[cfg(target_arch = "aarch64")]
mod neon;
mod panels;
mod scalar;

use std::sync::OnceLock;

pub use int8::{
    gemm_block_int8, gemm_block_panels, gemm_int8, gemv_block_int8, gemv_int8, gemv_rows_int8,
    int8_fits, Int8Codebooks, Int8GemmBlock, Int8GemvBlock, Int8Isa, Q8Group, Q8Row, Q8Vector,
    GEMM_COLS as INT8_GEMM_COLS, GEMM_ROWS as INT8_GEMM_ROWS, GROUP as INT8_GROUP,
};
pub use layout::{CbMatrix, FormatError, SUPPORTED_BITS};
pub use panels::{Int8Panels, PANEL_BITS, PANEL_ROWS};

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
    /// aarch64 NEON (Advanced SIMD), which every aarch64 Linux CPU has.
    Neon,
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
        [Isa::SCALAR, Isa::Avx2, Isa::Avx512, Isa::Neon]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect()
    }

    /// Whether this CPU has the instructions (`is_x86_feature_detected!` and
    /// `is_aarch64_feature_detected!` cache what they find).
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
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            _ => false, // another architecture's
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
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => neon::GEMV_LANES,
            _ => unreachable!("{self:?} kernels are not built for this architecture"),
        }
    }

    /// The scalar kernels that sum in this one's order.
    pub fn twin(self) -> Isa {
        Isa::Scalar {
            lanes: self.gemv_lanes(),
        }
    }

    /// Panics unless these kernels run here (and, for the scalar ones, sum
    /// in a supported number of lanes).
    pub fn check(self) {
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

/// Panics unless `isa` runs here and x [K], y [N] fit Ŵ [N, K].
pub fn check_gemv(isa: Isa, w: &CbMatrix, x: &[f32], y: &[f32]) {
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
}

/// Panics unless `isa` runs here and X [m, K] (row stride `ldx`), C [m, N]
/// (row stride `ldc`) fit in `x` and `c`.
pub fn check_gemm(isa: Isa, m: usize, w: &CbMatrix, x: &[f32], ldx: usize, c: &[f32], ldc: usize) {
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
}

/// Panics unless `isa` runs here and `out` holds Ŵ [N, K].
pub fn check_dequantize(isa: Isa, w: &CbMatrix, out: &[f32]) {
    isa.check();
    let (n, k) = (w.n(), w.k());
    assert_eq!(
        out.len(),
        n * k,
        "cb_dequantize: out has {} values, Ŵ [{n}, {k}]",
        out.len()
    );
}

/// Panics, naming `kernel`, unless x has K entries and rows r0..r0+rows
/// are in Ŵ.
pub(crate) fn check_rows(kernel: &str, w: &CbMatrix, x_len: usize, r0: usize, rows: usize) {
    assert!(
        x_len == w.k() && r0 + rows <= w.n(),
        "{kernel}: x [{x_len}] and rows {r0}..{} against Ŵ [{}, {}]",
        r0 + rows,
        w.n(),
        w.k()
    );
}

/// The `alpha` and `beta` of a row- or block-level product ([`gemv_rows`],
/// [`gemm_block`], [`gemv_rows_int8`], [`gemm_block_int8`]): `out :=
/// beta·out + alpha·product`, where `beta = 0` overwrites out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub alpha: f32,
    pub beta: f32,
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x for the rows of `y` ([`Scale`]),
/// with `isa`.
pub fn gemv_rows(
    isa: Isa,
    w: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    Scale { alpha, beta }: Scale,
) {
    isa.check();
    check_rows("gemv_rows", w, x.len(), r0, y.len());
    match isa {
        Isa::Scalar { lanes: 8 } => scalar::gemv_rows::<8>(w, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 16 } => scalar::gemv_rows::<16>(w, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 32 } => scalar::gemv_rows::<32>(w, x, y, r0, alpha, beta),
        Isa::Scalar { lanes: 64 } => scalar::gemv_rows::<64>(w, x, y, r0, alpha, beta),
        Isa::Scalar { .. } => unreachable!("checked"),
        // SAFETY: `check` found the features; x has K entries.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::gemv_rows(w, x, y, r0, alpha, beta) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::gemv_rows(w, x, y, r0, alpha, beta) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::gemv_rows(w, x, y, r0, alpha, beta) },
        _ => unreachable!("checked"),
    }
}

/// out := Ŵ[row, :] with `isa`.
pub fn decode_row(isa: Isa, w: &CbMatrix, row: usize, out: &mut [f32]) {
    isa.check();
    assert!(
        row < w.n() && out.len() == w.k(),
        "decode_row: row {row} into {} values, Ŵ [{}, {}]",
        out.len(),
        w.n(),
        w.k()
    );
    match isa {
        Isa::Scalar { .. } => scalar::decode_range(w, row, 0, out),
        // SAFETY: `check` found the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::decode_range(w, row, 0, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::decode_range(w, row, 0, out) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::decode_range(w, row, 0, out) },
        _ => unreachable!("checked"),
    }
}

/// A block of `C := beta·C + alpha·X·Ŵᵀ` in memory: rows `rows.0..rows.1`
/// and columns `cols.0..cols.1` of C, X row r at `x + r·ldx` (K values), C
/// row r at `c + r·ldc` ([`GemmRows`] as pointers, for one thread's share).
#[derive(Clone, Copy, Debug)]
pub struct GemmBlock {
    pub rows: (usize, usize),
    pub cols: (usize, usize),
    pub x: *const f32,
    pub ldx: usize,
    pub c: *mut f32,
    pub ldc: usize,
}

/// The block `block` of C := beta·C + alpha·X·Ŵᵀ ([`Scale`]) with `isa`.
///
/// # Safety
/// `isa` runs here ([`Isa::check`]); X and C hold those rows (as
/// [`check_gemm`] checks for slices); no other thread writes that block of C.
pub unsafe fn gemm_block(isa: Isa, w: &CbMatrix, block: GemmBlock, scale: Scale) {
    use gemm::gemm_block;
    match isa {
        Isa::Scalar { .. } => gemm_block::<scalar::ScalarGemm>(w, block, scale),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => gemm_block::<avx2::Avx2Gemm>(w, block, scale),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => gemm_block::<avx512::Avx512Gemm>(w, block, scale),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => gemm_block::<neon::NeonGemm>(w, block, scale),
        _ => unreachable!("{isa:?} kernels are not built for this architecture"),
    }
}

/// y := beta·y + alpha·Ŵ·x (x [K], y [N]) on the calling thread; `beta = 0`
/// overwrites y.
pub fn gemv(isa: Isa, w: &CbMatrix, x: &[f32], y: &mut [f32], alpha: f32, beta: f32) {
    check_gemv(isa, w, x, y);
    gemv_rows(isa, w, x, y, 0, Scale { alpha, beta })
}

/// The activation side of a codebook GEMM, `C := beta·C + alpha·X·Ŵᵀ`:
/// X [m, K] with row r at `x[r·ldx ..]`, C [m, N] with row r at
/// `c[r·ldc ..]`; `beta = 0` overwrites C.
pub struct GemmRows<'x, 'c> {
    pub m: usize,
    pub x: &'x [f32],
    pub ldx: usize,
    pub c: &'c mut [f32],
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// C := beta·C + alpha·X·Ŵᵀ ([`GemmRows`]) on the calling thread.
pub fn gemm(isa: Isa, w: &CbMatrix, rows: GemmRows) {
    let GemmRows {
        m,
        x,
        ldx,
        c,
        ldc,
        alpha,
        beta,
    } = rows;
    check_gemm(isa, m, w, x, ldx, c, ldc);
    // SAFETY: checked above; C is borrowed mutably.
    unsafe {
        gemm_block(
            isa,
            w,
            GemmBlock {
                rows: (0, m),
                cols: (0, w.n()),
                x: x.as_ptr(),
                ldx,
                c: c.as_mut_ptr(),
                ldc,
            },
            Scale { alpha, beta },
        )
    }
}

/// out := Ŵ ([N, K] row-major) on the calling thread.
pub fn dequantize(isa: Isa, w: &CbMatrix, out: &mut [f32]) {
    check_dequantize(isa, w, out);
    let k = w.k();
    if k == 0 {
        return;
    }
    for (row, out) in out.chunks_exact_mut(k).enumerate() {
        decode_row(isa, w, row, out);
    }
}
