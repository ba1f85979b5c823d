//! The codebook products of `ditto_kernels::codebook` (docs/codebook-format.md)
//! split over the runtime's one thread pool ([`crate::pool::Pool`]),
//! like the BLIS kernels, and their C adapters:
//!
//! ```text
//! cb_gemv:       y := beta·y + alpha·Ŵ·x        Ŵ [N, K], x [K], y [N]        (decode)
//! cb_gemm:       C := beta·C + alpha·X·Ŵᵀ       X [M, K], C [M, N]            (prefill)
//! cb_dequantize: out := Ŵ                      [N, K]   (Ditto's recipe: then BLIS)
//! ```
//!
//! The kernels themselves (the format's layout, the scalar twins, AVX2,
//! AVX-512, NEON) live in the `ditto-kernels` crate (`runtime/kernels`),
//! which builds and tests on every target; this module only splits the
//! work: the GEMV and dequantize by rows of Ŵ, the GEMM by rows or
//! columns of C, whichever is longer.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the split over the pool |
//! | `abi.rs` | the C-interface adapters the generated code calls |
//!
//! The instruction set is picked once per process ([`Isa::detected`]).
//!
//! The GEMV (decode) computes with int8 activations by default where the
//! CPU has the int8 kernels ([`Int8Isa::detected`]: AVX-512 VBMI + VNNI,
//! else AVX2 + AVX-VNNI) and the matrix fits them ([`Int8Isa::fits`]:
//! b = 2..6 or, for AVX2, 4; segments on 64-column boundaries): x is
//! quantized once per call, before the rows are split
//! ([`cb_gemv_int8_with`]). Elsewhere, and for every product when the
//! executable runs with `--activations f32` ([`crate::state::Settings`]), it
//! is the exact f32 kernel.
//!
//! The GEMM (prefill) does the same where the CPU has the AVX-512 int8
//! kernels and the matrix fits them ([`gemm_int8_isa`]): each row of X is
//! quantized once per call (the rows split over the pool), then every
//! output sums the integers the int8 GEMV sums from that row, in an order
//! of its own ([`cb_gemm_int8_with`]): prompt and generated positions see
//! the same quantization, and differ by f32 rounding only. CPUs with only
//! AVX2 + AVX-VNNI have an int8 GEMV but no int8 GEMM kernel: their
//! prefill stays f32 (and so differs from their decode by the activations'
//! quantization). `--activations f32` keeps both on the f32 kernels.
//! Dequantize is f32.
//!
//! **Panels.** Where the AVX-512 int8 kernels apply and b = 2, 3 or 4,
//! every product with a matrix of the model's weights (GEMV and GEMM, one
//! row or many) runs on the matrix in panels ([`Int8Panels`]: its indices
//! in the int8 GEMM's register order, made on the matrix's first product
//! over the pool and kept, 6.5 bits a weight at b = 4): the int8 GEMM's
//! numbers, bit for bit, for any number of rows, a row's the same whatever
//! rows come with it, and one row at about the GEMV's cost (the decode
//! step's product and the verification of drafted tokens alike:
//! docs/speculation.md). Elsewhere products of at most `GEMV_ORDER_ROWS`
//! rows are the GEMV of each row ([`cb_gemm`]).

pub mod abi;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

pub use ditto_kernels::codebook::{
    gemm_int8, int8_fits, CbMatrix, FormatError, GemmRows, Int8Codebooks, Int8Isa, Int8Panels, Isa,
    Q8Row, Q8Vector, PANEL_ROWS, SUPPORTED_BITS,
};

use ditto_kernels::codebook::{
    check_dequantize, check_gemm, check_gemv, decode_row, gemm_block, gemm_block_int8,
    gemm_block_panels, gemv_block_int8, gemv_rows, gemv_rows_int8, GemmBlock, Int8GemmBlock,
    Int8GemvBlock, Scale,
};

use crate::kernels::GEMV_ORDER_ROWS;
use crate::pool::Pool;

/// Below this many multiply-adds a product runs whole on the calling thread
/// (as in `kernels.rs`).
const MIN_PARALLEL_WORK: usize = 1 << 16;

/// The int8 kernels [`cb_gemv`] uses for `w`, if any.
pub fn gemv_int8_isa(w: &CbMatrix) -> Option<Int8Isa> {
    Int8Isa::detected().filter(|isa| crate::state::settings().int8_activations && isa.fits(w))
}

/// The int8 kernels [`cb_gemm`] uses for `w`, if any: those of
/// [`gemv_int8_isa`] when they are the AVX-512 ones (AVX2 + AVX-VNNI has
/// no int8 GEMM kernel; the scalar twin is never picked).
pub fn gemm_int8_isa(w: &CbMatrix) -> Option<Int8Isa> {
    gemv_int8_isa(w).filter(|&isa| isa == Int8Isa::Avx512Vnni)
}

/// y := beta·y + alpha·Ŵ·x (x [K], y [N]); `beta = 0` overwrites y. From
/// the matrix's panels where they apply (the module comment: the 1-row
/// int8 GEMM), else with int8 activations where they apply
/// ([`gemv_int8_isa`]), else exact f32.
pub fn cb_gemv(pool: &Pool, w: &CbMatrix, x: &[f32], y: &mut [f32], alpha: f32, beta: f32) {
    if let Some((isa, panels)) = gemm_int8_isa(w).and_then(|isa| Some((isa, panels(isa, pool, w)?)))
    {
        check_gemv(Isa::SCALAR, w, x, y);
        let (n, k) = (w.n(), w.k());
        let rows = GemmRows {
            m: 1,
            x,
            ldx: k,
            c: y,
            ldc: n,
            alpha,
            beta,
        };
        return cb_gemm_panels_with(isa, pool, w, &panels, rows);
    }
    match gemv_int8_isa(w) {
        Some(isa) => cb_gemv_int8_with(isa, pool, w, x, y, alpha, beta),
        None => cb_gemv_with(Isa::detected(), pool, w, x, y, alpha, beta),
    }
}

/// The weights section whose codebooks the AVX-512 int8 GEMV reads
/// converted ([`Int8Codebooks`], made on a matrix's first product and kept:
/// 20 bytes per 4-bit block), and those made so far by address.
pub(crate) struct Converted {
    /// [start, end) of the section's bytes.
    range: (usize, usize),
    by_address: HashMap<usize, Arc<Int8Codebooks>>,
    /// The matrices in panels ([`Int8Panels`]), by the address of their codebooks.
    panels: HashMap<usize, Arc<Int8Panels>>,
}

impl Converted {
    /// Whether `w`'s codebooks lie in the section; their address is the key
    /// of what is kept for `w`.
    fn key(&self, w: &CbMatrix) -> Option<usize> {
        let start = w.codebooks().as_ptr() as usize;
        let end = start + std::mem::size_of_val(w.codebooks());
        (start >= self.range.0 && end <= self.range.1).then_some(start)
    }
}

/// Converts the codebooks of the matrices in `weights` once, on first use,
/// from now until [`forget_converted_codebooks`] (a model's weights: they
/// do not change while it lives). One section at a time.
pub fn convert_codebooks_in(weights: &[u8]) {
    let start = weights.as_ptr() as usize;
    if let Ok(mut converted) = crate::state::state().converted.lock() {
        *converted = Some(Converted {
            range: (start, start + weights.len()),
            by_address: HashMap::new(),
            panels: HashMap::new(),
        });
    }
}

/// Drops the converted codebooks and stops converting (the weights are
/// going away).
pub fn forget_converted_codebooks() {
    if let Ok(mut converted) = crate::state::state().converted.lock() {
        *converted = None;
    }
}

/// `w`'s converted codebooks, for the kernels that read them (AVX-512), if
/// `w` lies in the section of [`convert_codebooks_in`].
fn converted(isa: Int8Isa, w: &CbMatrix) -> Option<Arc<Int8Codebooks>> {
    if isa != Int8Isa::Avx512Vnni {
        return None;
    }
    let mut guard = crate::state::state().converted.lock().ok()?;
    let section = guard.as_mut()?;
    let start = section.key(w)?;
    let made = section
        .by_address
        .entry(start)
        .or_insert_with(|| Arc::new(Int8Codebooks::new(w)));
    made.fits(w).then(|| made.clone())
}

/// `w` in panels ([`Int8Panels`]) for the AVX-512 int8 GEMM, made on its
/// first product and kept, if `w` lies in the section of
/// [`convert_codebooks_in`] and has b = 2, 3 or 4 (the panels' 6.5 bits a
/// weight at b = 4 are the price of products of any number of rows at
/// about the GEMV's cost for one).
fn panels(isa: Int8Isa, pool: &Pool, w: &CbMatrix) -> Option<Arc<Int8Panels>> {
    if isa != Int8Isa::Avx512Vnni || !Int8Panels::fit(w) {
        return None;
    }
    let mut guard = crate::state::state().converted.lock().ok()?;
    let section = guard.as_mut()?;
    let start = section.key(w)?;
    if let Some(made) = section.panels.get(&start) {
        return made.fits(w).then(|| made.clone());
    }
    // The converted codebooks only serve to make the panels: dropped after.
    let codebooks = section
        .by_address
        .remove(&start)
        .unwrap_or_else(|| Arc::new(Int8Codebooks::new(w)));
    if !codebooks.fits(w) {
        return None;
    }
    let made = Arc::new(Int8Panels::new_with(w, &codebooks, &|panels, fill| {
        pool.for_each_slice(panels, fill)
    }));
    section.panels.insert(start, made.clone());
    page_out(w.indices());
    Some(made)
}

/// Tells the kernel that `bytes` will not be read soon (a matrix's index
/// stream once it is in panels): their pages of the mapped payload are
/// reclaimed, so that the panels do not double the resident weights. A
/// hint only (`MADV_PAGEOUT`: the bytes stay what they are, read again
/// from the file if ever needed); nothing happens where it is not known.
fn page_out(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (bytes.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (bytes.as_ptr() as usize + bytes.len()) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies inside `bytes`; MADV_PAGEOUT changes
            // no contents, only where the pages are kept.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// y := beta·y + alpha·Ŵ·x̂, x̂ = x quantized to int8 ([`Q8Vector`]) once
/// on the calling thread, the rows then split over the pool. Panics unless
/// `isa` runs here and [`Int8Isa::fits`]`(w)`.
pub fn cb_gemv_int8_with(
    isa: Int8Isa,
    pool: &Pool,
    w: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    alpha: f32,
    beta: f32,
) {
    thread_local! {
        /// The calling thread's quantized x, its storage kept between calls.
        static XQ: RefCell<Q8Vector> = RefCell::default();
    }
    check_gemv(Isa::SCALAR, w, x, y);
    let converted = converted(isa, w);
    let scale = Scale { alpha, beta };
    let mut product = |xq: &Q8Vector| {
        split_rows(pool, w, y, |y, r0| {
            gemv_rows_int8(isa, w, converted.as_deref(), xq, y, r0, scale)
        })
    };
    XQ.with(|xq| match xq.try_borrow_mut() {
        Ok(mut xq) => {
            xq.set(x);
            product(&xq)
        }
        // Taken only by a product nested in another on this thread.
        Err(_) => product(&Q8Vector::new(x)),
    })
}

/// Runs `rows(slice, r0)` over slices of y [N] (rows r0.. of Ŵ): all at
/// once for a small product, else one slice per thread of the pool.
fn split_rows(pool: &Pool, w: &CbMatrix, y: &mut [f32], rows: impl Fn(&mut [f32], usize) + Sync) {
    let n = y.len();
    let y_at = y.as_mut_ptr() as usize;
    let slice = |r0: usize, r1: usize| {
        // SAFETY: slices of y are disjoint across calls.
        let y = unsafe { std::slice::from_raw_parts_mut((y_at as *mut f32).add(r0), r1 - r0) };
        rows(y, r0)
    };
    if n.saturating_mul(w.k()) < MIN_PARALLEL_WORK {
        slice(0, n)
    } else {
        pool.for_each_slice(n, slice)
    }
}

/// Runs `block(rows, cols)` over blocks of an [m, n] product: whole unless
/// `parallel`, else split over the pool by rows when m ≥ n, by columns
/// otherwise (a prefill's few rows against many columns).
fn split_blocks(
    pool: &Pool,
    parallel: bool,
    (m, n): (usize, usize),
    block: impl Fn((usize, usize), (usize, usize)) + Sync,
) {
    if !parallel {
        block((0, m), (0, n))
    } else if m >= n {
        pool.for_each_slice(m, |r0, r1| block((r0, r1), (0, n)))
    } else {
        pool.for_each_slice(n, |c0, c1| block((0, m), (c0, c1)))
    }
}

/// y := beta·y + alpha·Ŵ·x with the given f32 kernels.
pub fn cb_gemv_with(
    isa: Isa,
    pool: &Pool,
    w: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    alpha: f32,
    beta: f32,
) {
    check_gemv(isa, w, x, y);
    let scale = Scale { alpha, beta };
    split_rows(pool, w, y, |y, r0| gemv_rows(isa, w, x, y, r0, scale))
}

/// C := beta·C + alpha·X·Ŵᵀ ([`GemmRows`]: X [m, K], C [m, N]); `beta = 0`
/// overwrites C. From the matrix's panels where they apply (the module
/// comment), else with int8 activations where they apply
/// ([`gemm_int8_isa`]), else exact f32.
///
/// Without panels, products of at most [`GEMV_ORDER_ROWS`] rows are
/// [`cb_gemv`]'s product of each row, bit for bit (with the int8 kernels
/// through [`cb_gemv_many_int8_with`], which looks the weights up once per
/// 4 rows), so that a row's product does not depend on the rows that come
/// with it (with panels it never does).
pub fn cb_gemm(pool: &Pool, w: &CbMatrix, rows: GemmRows) {
    if let Some((isa, panels)) = gemm_int8_isa(w).and_then(|isa| Some((isa, panels(isa, pool, w)?)))
    {
        return cb_gemm_panels_with(isa, pool, w, &panels, rows);
    }
    if rows.m <= GEMV_ORDER_ROWS {
        return match gemv_int8_isa(w) {
            Some(isa) => cb_gemv_many_int8_with(isa, pool, w, rows),
            None => cb_gemv_each_row(pool, w, rows),
        };
    }
    match gemm_int8_isa(w) {
        Some(isa) => cb_gemm_int8_with(isa, pool, w, rows),
        None => cb_gemm_with(Isa::detected(), pool, w, rows),
    }
}

/// [`cb_gemm`] as [`cb_gemv`]'s f32 product of each row.
fn cb_gemv_each_row(pool: &Pool, w: &CbMatrix, rows: GemmRows) {
    let GemmRows {
        m,
        x,
        ldx,
        c,
        ldc,
        alpha,
        beta,
    } = rows;
    check_gemm(Isa::SCALAR, m, w, x, ldx, c, ldc);
    let (n, k) = (w.n(), w.k());
    for r in 0..m {
        let (x, y) = (&x[r * ldx..r * ldx + k], &mut c[r * ldc..r * ldc + n]);
        cb_gemv_with(Isa::detected(), pool, w, x, y, alpha, beta);
    }
}

/// C := beta·C + alpha·X̂·Ŵᵀ as the int8 GEMV of each row of X ([`Q8Vector`],
/// quantized on the calling thread; `gemv_block_int8`, weights looked up
/// once per 4 rows), the rows of Ŵ split over the pool: row r of C is, bit
/// for bit, what [`cb_gemv_int8_with`] gives for row r of X. Panics unless
/// `isa` runs here and [`Int8Isa::fits`]`(w)`.
pub fn cb_gemv_many_int8_with(isa: Int8Isa, pool: &Pool, w: &CbMatrix, rows: GemmRows) {
    let GemmRows {
        m,
        x,
        ldx,
        c,
        ldc,
        alpha,
        beta,
    } = rows;
    thread_local! {
        /// The calling thread's quantized rows of X, their storage kept between calls.
        static XQ: RefCell<Vec<Q8Vector>> = RefCell::default();
    }
    check_gemm(Isa::SCALAR, m, w, x, ldx, c, ldc);
    isa.check();
    let (n, k) = (w.n(), w.k());
    if m == 0 {
        return;
    }
    let converted = converted(isa, w);
    let c_at = c.as_mut_ptr() as usize;
    let product = |xq: &mut Vec<Q8Vector>| {
        xq.resize_with(m, Q8Vector::default);
        for (r, v) in xq.iter_mut().enumerate() {
            v.set_with(isa, &x[r * ldx..r * ldx + k]);
        }
        let xq: &[Q8Vector] = xq;
        let cols = |c0: usize, c1: usize| {
            // SAFETY: C holds the rows checked above; each call writes its
            // own columns of C; `gemv_block_int8` checks the rest.
            unsafe {
                let block = Int8GemvBlock {
                    xq,
                    cols: (c0, c1),
                    c: c_at as *mut f32,
                    ldc,
                };
                gemv_block_int8(isa, w, converted.as_deref(), block, Scale { alpha, beta })
            }
        };
        if m.saturating_mul(n).saturating_mul(k) < MIN_PARALLEL_WORK {
            cols(0, n)
        } else {
            pool.for_each_slice(n, cols)
        }
    };
    XQ.with(|xq| match xq.try_borrow_mut() {
        Ok(mut xq) => product(&mut xq),
        // Taken only by a product nested in another on this thread.
        Err(_) => product(&mut Vec::new()),
    })
}

/// C := beta·C + alpha·X̂·Ŵᵀ, X̂ = X quantized to int8 row by row (each
/// row as [`Q8Vector`] quantizes it, the rows split over the pool), then
/// the product split over the pool by rows of Ŵ (columns of C), or by rows
/// of C when there are more of them. Row r of C is what
/// [`cb_gemv_int8_with`] gives for row r of X to within f32 rounding, and
/// bit for bit the kernels' own single-threaded product, however it is
/// split. Panics unless `isa` runs here and [`Int8Isa::fits`]`(w)`.
pub fn cb_gemm_int8_with(isa: Int8Isa, pool: &Pool, w: &CbMatrix, rows: GemmRows) {
    int8_gemm(isa, pool, w, None, rows)
}

/// [`cb_gemm_int8_with`] from `w`'s panels ([`Int8Panels`]): the same
/// outputs bit for bit, split over the pool by panels; one row costs about
/// what the int8 GEMV does. Panics unless `isa` runs here, [`Int8Isa::fits`]`(w)`
/// and the panels are `w`'s.
pub fn cb_gemm_panels_with(
    isa: Int8Isa,
    pool: &Pool,
    w: &CbMatrix,
    panels: &Int8Panels,
    rows: GemmRows,
) {
    int8_gemm(isa, pool, w, Some(panels), rows)
}

/// The int8 GEMM, from the panels if given.
fn int8_gemm(isa: Int8Isa, pool: &Pool, w: &CbMatrix, panels: Option<&Int8Panels>, rows: GemmRows) {
    let GemmRows {
        m,
        x,
        ldx,
        c,
        ldc,
        alpha,
        beta,
    } = rows;
    thread_local! {
        /// The calling thread's quantized rows of X, their storage kept between calls.
        static XQ: RefCell<Vec<Q8Row>> = RefCell::default();
    }
    check_gemm(Isa::SCALAR, m, w, x, ldx, c, ldc);
    isa.check();
    let (n, k) = (w.n(), w.k());
    if m == 0 {
        return;
    }
    let parallel = m.saturating_mul(n).saturating_mul(k) >= MIN_PARALLEL_WORK;
    let c_at = c.as_mut_ptr() as usize;
    let product = |rows: &mut Vec<Q8Row>| {
        rows.resize_with(m, Q8Row::default);
        let rows_at = rows.as_mut_ptr() as usize;
        let quantize = |r0: usize, r1: usize| {
            let mut v = Q8Vector::default();
            for r in r0..r1 {
                v.set_with(isa, &x[r * ldx..r * ldx + k]);
                // SAFETY: each row is quantized by one call; the Vec is not
                // touched otherwise until all are done.
                unsafe { (*(rows_at as *mut Q8Row).add(r)).set(&v) }
            }
        };
        if parallel && m >= 4 {
            pool.for_each_slice(m, quantize)
        } else {
            quantize(0, m)
        }
        let rows: &[Q8Row] = rows;
        let block = |(r0, r1): (usize, usize), cols: (usize, usize)| {
            // SAFETY: C holds the rows checked above; each call writes its
            // own block of C; `gemm_block_int8` / `gemm_block_panels` check
            // the rest.
            unsafe {
                let block = Int8GemmBlock {
                    xq: &rows[r0..r1],
                    cols,
                    c: (c_at as *mut f32).add(r0 * ldc),
                    ldc,
                };
                match panels {
                    Some(panels) => gemm_block_panels(isa, w, panels, block, Scale { alpha, beta }),
                    None => gemm_block_int8(isa, w, block, Scale { alpha, beta }),
                }
            }
        };
        match panels {
            // Whole panels per thread.
            Some(_) if parallel => pool.for_each_slice(n.div_ceil(PANEL_ROWS), |p0, p1| {
                block((0, m), (PANEL_ROWS * p0, n.min(PANEL_ROWS * p1)))
            }),
            _ => split_blocks(pool, parallel, (m, n), block),
        }
    };
    XQ.with(|xq| match xq.try_borrow_mut() {
        Ok(mut rows) => product(&mut rows),
        // Taken only by a product nested in another on this thread.
        Err(_) => product(&mut Vec::new()),
    })
}

/// [`cb_gemm`] with the given kernels.
pub fn cb_gemm_with(isa: Isa, pool: &Pool, w: &CbMatrix, rows: GemmRows) {
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
    let (n, k) = (w.n(), w.k());
    if m == 0 {
        return;
    }
    let (x_at, c_at) = (x.as_ptr() as usize, c.as_mut_ptr() as usize);
    let block = |rows: (usize, usize), cols: (usize, usize)| {
        let block = GemmBlock {
            rows,
            cols,
            x: x_at as *const f32,
            ldx,
            c: c_at as *mut f32,
            ldc,
        };
        // SAFETY: X and C hold the rows checked above; each call writes its
        // own block of C; the ISA's features were checked.
        unsafe { gemm_block(isa, w, block, Scale { alpha, beta }) }
    };
    let parallel = m.saturating_mul(n).saturating_mul(k) >= MIN_PARALLEL_WORK;
    split_blocks(pool, parallel, (m, n), block)
}

/// out := Ŵ ([N, K] row-major).
pub fn cb_dequantize(pool: &Pool, w: &CbMatrix, out: &mut [f32]) {
    cb_dequantize_with(Isa::detected(), pool, w, out)
}

/// [`cb_dequantize`] with the given kernels.
pub fn cb_dequantize_with(isa: Isa, pool: &Pool, w: &CbMatrix, out: &mut [f32]) {
    check_dequantize(isa, w, out);
    let (n, k) = (w.n(), w.k());
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
