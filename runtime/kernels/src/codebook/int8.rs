//! The GEMV with int8 activations: y := beta·y + alpha·Ŵ·x computed the way
//! llama.cpp computes x·W against Q8 activations, from integer dot products.
//!
//! * **Activations** ([`Q8Vector`]): once per product, x [K] is cut into
//!   groups of [`GROUP`] = 64 consecutive entries; group g gets the scale
//!   `s_x[g] = max|x_g| / 127` and the values `xq = round(x / s_x[g])` in
//!   i8 (all zero when the group is), so that `x ≈ s_x[g]·xq` within
//!   `s_x[g]/2` per entry.
//! * **Weights**: per segment (a row's run of weights sharing one codebook,
//!   `layout.rs`) the 2^b f16 centroids become int8 the same way, with one
//!   scale `s_c = max|c| / 127` and `qc = round_ties_even(c · (127/max|c|))`.
//! * **Sums**: per group, `Σ qc[idx_i] · xq_i` is an exact integer; it is
//!   scaled by `s_x[g]` into an f32 partial sum of the segment, which is
//!   scaled by `s_c` into the row's sum.
//!
//! The AVX-512 kernel (`avx512_vnni.rs`) multiplies with `vpdpbusd`, which
//! takes one unsigned and one signed byte operand: the table holds
//! `qc + 128` (u8) and the sum starts from `−128 · Σ xq` per dword lane
//! ([`Q8Group::bias`]), so every lane holds `Σ qc·xq` over its 4 weights
//! exactly. Lane l of a group (weights 4l..4l+3) is converted to f32 and
//! summed with a fused multiply-add by `s_x[g]` into lane l of one of two
//! f32 accumulators (even and odd groups of the segment); at the end of
//! the segment `row[l] = (acc0[l] + acc1[l]) · s_c + row[l]` (fused), and
//! the 16 lanes of `row` are reduced by halving. The scalar twin
//! (`scalar::gemv_rows_int8`) does exactly these f32 operations in this
//! order on the same integers, so the two agree bit for bit.
//!
//! The GEMM (prefill, [`gemm_block_int8`]) sums the same exact integers
//! in a different order, made for products with many rows of X: per output
//! `C[r, i]` and group g (which lies in one segment of row i), the whole
//! group's `D = Σ qc·xq` as one integer, then one f32 step
//! `acc = fma(f32(D), s_c·s_x[g], acc)` per group in k order. Its AVX-512
//! kernel holds 16 rows of Ŵ in the 16 dword lanes of a register and
//! broadcasts 4 activations at a time, so that one conversion and one FMA
//! serve 16 `vpdpbusd` instead of one. The outputs are the int8 GEMV's to
//! within f32 rounding (not bit for bit: the GEMV sums per lane across the
//! groups of a segment); the scalar twin (`scalar::gemm_block_int8`) does
//! the GEMM's own operations, bit for bit.
//!
//! Which matrices: b = 2..6, and only when every segment starts on a group
//! boundary within its row (segment boundaries at columns that are
//! multiples of 64: B and K multiples of 64, or B a multiple of K, or one
//! block for the whole matrix — the quantizer's default blocks 32·2^b on
//! models whose K is a multiple of 64 always are). [`int8_fits`] tells; for
//! other matrices (and b = 8) the caller uses the f32 kernels.
//!
//! Which CPUs: x86-64 with AVX-512 F, BW, VL, VBMI and VNNI
//! ([`Int8Isa::Avx512Vnni`], b = 2..6), else x86-64 with AVX2, FMA, F16C
//! and AVX-VNNI ([`Int8Isa::Avx2Vnni`], b = 4 only: `avx2_vnni.rs`; x is
//! quantized by the scalar code there). Everywhere
//! else the scalar twin is available as a reference, but it is slower than
//! the f32 SIMD kernels: callers use [`Int8Isa::detected`], which names
//! only SIMD kernels, and [`Int8Isa::fits`].

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::avx512_panels;
use super::layout::CbMatrix;
use super::panels::Int8Panels;
#[cfg(target_arch = "x86_64")]
use super::{avx2_vnni, avx512_vnni};
use super::{scalar, Scale};

/// Activations per group (one scale each).
pub const GROUP: usize = 64;

/// Dword lanes per group (4 weights each), as `vpdpbusd` sums them.
pub const LANES: usize = GROUP / 4;

/// One group of quantized activations, laid out for one 64-byte load each
/// of the values and of the lane biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Q8Group {
    /// `round(x / s_x)`, zero past the end of x.
    pub q: [i8; GROUP],
    /// `−128 · (q[4l] + q[4l+1] + q[4l+2] + q[4l+3])` for lane l: what a
    /// u8 × i8 dot product with the table stored as `qc + 128` must start
    /// from to sum `qc · q` exactly.
    pub bias: [i32; LANES],
}

impl Q8Group {
    const ZERO: Q8Group = Q8Group {
        q: [0; GROUP],
        bias: [0; LANES],
    };
}

/// x [K] quantized to int8 in groups of [`GROUP`] (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Q8Vector {
    k: usize,
    groups: Vec<Q8Group>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

impl Q8Vector {
    /// Quantizes `x`.
    pub fn new(x: &[f32]) -> Q8Vector {
        let mut v = Q8Vector::default();
        v.set(x);
        v
    }

    /// Quantizes `x` with the given kernels (all give the same values).
    pub fn new_with(isa: Int8Isa, x: &[f32]) -> Q8Vector {
        let mut v = Q8Vector::default();
        v.set_with(isa, x);
        v
    }

    /// Quantizes `x` into `self`, reusing its storage.
    ///
    /// Per group: `s_x = max|x| / 127`, `xq = round_ties_even(x · (127 /
    /// max|x|))` (|xq| ≤ 127). A group of zeros gets `s_x = 0` and zeros. A
    /// group holding a NaN or an infinity gets `s_x = NaN` (and zeros), so
    /// that every product with it is NaN, as the f32 kernels' would be NaN
    /// or infinite.
    pub fn set(&mut self, x: &[f32]) {
        self.set_with(Int8Isa::detected().unwrap_or(Int8Isa::Scalar), x)
    }

    /// [`Q8Vector::set`] with the given kernels: the AVX-512 one quantizes
    /// a group with the same f32 operations as the scalar one, and hands
    /// the groups it does not take (non-finite, or max|x| < 127/f32::MAX)
    /// to it.
    pub fn set_with(&mut self, isa: Int8Isa, x: &[f32]) {
        isa.check();
        let groups = x.len().div_ceil(GROUP);
        self.k = x.len();
        self.groups.clear();
        self.groups.resize(groups, Q8Group::ZERO);
        self.scales.clear();
        self.scales.resize(groups, 0.0);
        self.sums.clear();
        self.sums.resize(groups, 0);
        match isa {
            Int8Isa::Scalar => {
                for (g, xs) in x.chunks(GROUP).enumerate() {
                    let (scale, sum) = quantize_group(xs, &mut self.groups[g]);
                    self.scales[g] = scale;
                    self.sums[g] = sum;
                }
            }
            // SAFETY: `check` found the features; the arrays have one entry per group.
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni => unsafe {
                avx512_vnni::quantize(x, &mut self.groups, &mut self.scales, &mut self.sums)
            },
            #[cfg(not(target_arch = "x86_64"))]
            Int8Isa::Avx512Vnni => unreachable!("checked"),
            Int8Isa::Avx2Vnni => self.set_with(Int8Isa::Scalar, x),
        }
    }

    /// K, the length of x.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The groups (`ceil(K / 64)`; the last one zero-padded).
    pub fn groups(&self) -> &[Q8Group] {
        &self.groups
    }
    /// `s_x[g]` per group.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// `Σ xq` per group.
    pub fn sums(&self) -> &[i32] {
        &self.sums
    }
    /// `xq[i]`, i < K.
    pub fn value(&self, i: usize) -> i8 {
        self.groups[i / GROUP].q[i % GROUP]
    }
    /// `s_x[g]·xq` per entry: x as the int8 products see it.
    pub fn dequantized(&self) -> Vec<f32> {
        (0..self.k)
            .map(|i| self.scales[i / GROUP] * self.value(i) as f32)
            .collect()
    }
}

/// Quantizes one group of at most 64 values into `out` (zeroed); returns
/// its scale and `Σ xq`.
pub(crate) fn quantize_group(xs: &[f32], out: &mut Q8Group) -> (f32, i32) {
    let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if xs.iter().any(|v| !v.is_finite()) {
        return (f32::NAN, 0);
    }
    if amax == 0.0 {
        return (0.0, 0);
    }
    let inv = 127.0 / amax;
    if inv.is_finite() {
        // |v·inv| ≤ 127·(1 + 2⁻²³): adding and taking away 1.5·2²³ rounds
        // it to the nearest integer, ties to even, as `round_ties_even`
        // does, but in a loop that vectorizes on any x86-64 (which has no
        // vector rounding instruction before SSE4.1).
        const MAGIC: f32 = 12_582_912.0;
        for (q, &v) in out.q.iter_mut().zip(xs) {
            *q = ((v * inv + MAGIC) - MAGIC) as i8;
        }
    } else {
        // max|x| below 127/f32::MAX (~4e-37): in f64, where 127/max|x| fits.
        let inv = 127.0 / amax as f64;
        for (q, &v) in out.q.iter_mut().zip(xs) {
            *q = (v as f64 * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
    }
    for (l, bias) in out.bias.iter_mut().enumerate() {
        *bias = -128
            * out.q[4 * l..4 * l + 4]
                .iter()
                .map(|&q| q as i32)
                .sum::<i32>();
    }
    let sum = out.q.iter().map(|&q| q as i32).sum();
    (amax / 127.0, sum)
}

/// One row of X quantized for the GEMM ([`gemm_block_int8`]): the values,
/// scales and sums of its [`Q8Vector`] (the same scheme, the same integers),
/// laid out for the GEMM. Its values are one run of `64·ceil(K / 64)` i8
/// (zero past K), so that the AVX-512 kernel broadcasts 4 of them at a time
/// against 16 rows of Ŵ; and per group, beside `s_x[g]`, the start
/// `−128 · Σ xq` that makes `vpdpbusd` of the weights as `qc + 128` (u8)
/// against `xq` (i8) sum exactly `Σ qc·xq`.
#[derive(Clone, Debug, Default)]
pub struct Q8Row {
    k: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
    starts: Vec<i32>,
}

impl Q8Row {
    /// `x` quantized ([`Q8Vector::new`]) and stored for the GEMM.
    pub fn new(x: &[f32]) -> Q8Row {
        let mut row = Q8Row::default();
        row.set(&Q8Vector::new(x));
        row
    }

    /// Takes the values, scales and sums of `v`, reusing this row's storage.
    pub fn set(&mut self, v: &Q8Vector) {
        self.k = v.k();
        self.values.clear();
        self.values.extend(v.groups().iter().flat_map(|g| g.q));
        self.scales.clear();
        self.scales.extend_from_slice(v.scales());
        self.starts.clear();
        self.starts.extend(v.sums().iter().map(|s| -128 * s));
    }

    /// K, the length of x.
    pub fn k(&self) -> usize {
        self.k
    }
    /// `xq`, 64 per group (`ceil(K / 64)` groups; zero past K).
    pub fn values(&self) -> &[i8] {
        &self.values
    }
    /// `s_x[g]` per group.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// `−128 · Σ xq` per group.
    pub fn starts(&self) -> &[i32] {
        &self.starts
    }
    /// `xq[i]`, i < K.
    pub fn value(&self, i: usize) -> i8 {
        self.values[i]
    }
}

/// A segment's codebook in int8: `qc[j] = round_ties_even(c[j] · (127 /
/// max|c|))` and the scale `s_c = max|c| / 127` (0 and all zeros for an
/// all-zero codebook). Every kernel converts with these f32 operations.
#[inline]
pub(crate) fn int8_codebook_scale(amax: f32) -> (f32, f32) {
    let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    (amax / 127.0, inv)
}

/// Every block's codebook of a matrix in int8, converted once: `qc + 128`
/// (2^b bytes per block, as the AVX-512 kernel's `vpermb` table holds
/// them) and `s_c`, the same numbers each product otherwise converts again
/// for every call ([`int8_codebook_scale`]). A decoding model reads its
/// codebooks once per token; converted once, they cost the AVX-512 GEMV a
/// broadcast load per segment instead (20 bytes per 4-bit block instead of
/// the 32 of its f16 centroids, and no conversion).
#[derive(Clone, Debug)]
pub struct Int8Codebooks {
    bits: usize,
    /// [blocks][2^b] `qc + 128`.
    tables: Vec<u8>,
    /// [blocks] `s_c`.
    scales: Vec<f32>,
}

impl Int8Codebooks {
    /// The converted codebooks of `w` (b = 2..6), by the AVX-512 kernel's
    /// own conversion where it runs, else by the scalar twin's (the same
    /// numbers).
    pub fn new(w: &CbMatrix) -> Self {
        assert!(
            (2..=6).contains(&w.bits()),
            "Int8Codebooks: no int8 codebooks of {}-bit indices",
            w.bits()
        );
        #[cfg(target_arch = "x86_64")]
        if Int8Isa::Avx512Vnni.runs_here() {
            let blocks = w.codebooks().len() >> w.bits();
            let mut tables = vec![0u8; blocks << w.bits()];
            let mut scales = vec![0.0f32; blocks];
            // SAFETY: the features are there; one table and scale per block.
            unsafe { avx512_vnni::convert_all(w.codebooks(), w.bits(), &mut tables, &mut scales) };
            return Int8Codebooks {
                bits: w.bits(),
                tables,
                scales,
            };
        }
        Self::new_scalar(w)
    }

    /// [`Int8Codebooks::new`] by the scalar twin's conversion.
    fn new_scalar(w: &CbMatrix) -> Self {
        let levels = 1usize << w.bits();
        let codebooks = w.codebooks();
        let blocks = codebooks.len() / levels;
        let mut tables = vec![0u8; blocks * levels];
        let mut scales = vec![0.0f32; blocks];
        for ((codebook, table), scale) in codebooks
            .chunks_exact(levels)
            .zip(tables.chunks_exact_mut(levels))
            .zip(&mut scales)
        {
            let (q, s) = scalar::int8_codebook(codebook);
            for (t, &q) in table.iter_mut().zip(&q) {
                *t = (q as u8) ^ 0x80;
            }
            *scale = s;
        }
        Int8Codebooks {
            bits: w.bits(),
            tables,
            scales,
        }
    }

    /// Whether these are `w`'s codebooks' shape (width and block count).
    pub fn fits(&self, w: &CbMatrix) -> bool {
        self.bits == w.bits() && self.scales.len() << self.bits == w.codebooks().len()
    }

    /// Block `j`'s `qc + 128` (2^b bytes) and `s_c` (read by the AVX-512
    /// kernel only).
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn block(&self, j: usize) -> (&[u8], f32) {
        let levels = 1usize << self.bits;
        (&self.tables[j * levels..(j + 1) * levels], self.scales[j])
    }
}

/// Which kernels compute the int8-activation GEMV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Isa {
    /// The scalar twin: a reference, slower than the f32 SIMD kernels.
    Scalar,
    /// x86-64 AVX-512 F + BW + VL + VBMI + VNNI (`vpermb`,
    /// `vpmultishiftqb`, `vpdpbusd`): b = 2..6.
    Avx512Vnni,
    /// x86-64 AVX2 + FMA + F16C + AVX-VNNI (`vpshufb`, VEX `vpdpbusd`): b = 4.
    Avx2Vnni,
}

impl Int8Isa {
    /// The SIMD int8 kernels this CPU runs, if any, detected once.
    pub fn detected() -> Option<Int8Isa> {
        static BEST: OnceLock<Option<Int8Isa>> = OnceLock::new();
        *BEST.get_or_init(|| {
            [Int8Isa::Avx512Vnni, Int8Isa::Avx2Vnni]
                .into_iter()
                .find(|isa| isa.runs_here())
        })
    }

    /// Every kind of int8 kernel this CPU runs, the scalar twin first.
    pub fn available() -> Vec<Int8Isa> {
        [Int8Isa::Scalar, Int8Isa::Avx2Vnni, Int8Isa::Avx512Vnni]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect()
    }

    /// Whether this CPU has the instructions.
    pub fn runs_here(self) -> bool {
        match self {
            Int8Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vbmi")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx2Vnni => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
                    && is_x86_feature_detected!("avxvnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Int8Isa::Avx512Vnni | Int8Isa::Avx2Vnni => false,
        }
    }

    /// Whether these kernels compute `w`: [`int8_fits`], and b = 4 for
    /// [`Int8Isa::Avx2Vnni`].
    pub fn fits(self, w: &CbMatrix) -> bool {
        int8_fits(w) && (self != Int8Isa::Avx2Vnni || w.bits() == 4)
    }

    /// Panics unless these kernels run here.
    pub fn check(self) {
        assert!(
            self.runs_here(),
            "this CPU cannot run the {self:?} int8 codebook kernels"
        );
    }
}

/// Whether the int8 kernels compute `w` (b = 2..6, every segment starting
/// on a 64-column group boundary of its row); otherwise use the f32 ones.
pub fn int8_fits(w: &CbMatrix) -> bool {
    let (n, k, block) = (w.n(), w.k(), w.block());
    (2..=6).contains(&w.bits())
        && (k == 0
            || n * k <= block
            || block.is_multiple_of(k)
            || (k.is_multiple_of(GROUP) && block.is_multiple_of(GROUP)))
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x̂ for the rows of `y` ([`Scale`]),
/// x̂ the quantized x, with `isa`. `converted`: Ŵ's codebooks converted once
/// ([`Int8Codebooks`]), which the AVX-512 kernel then reads instead of
/// converting them (the other kernels convert as before); the result is
/// the same bit for bit.
///
/// Panics unless `isa` runs here, `xq` has K entries, the rows are in Ŵ,
/// [`Int8Isa::fits`] holds and `converted` is of Ŵ's shape.
pub fn gemv_rows_int8(
    isa: Int8Isa,
    w: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    xq: &Q8Vector,
    y: &mut [f32],
    r0: usize,
    Scale { alpha, beta }: Scale,
) {
    isa.check();
    super::check_rows("gemv_rows_int8", w, xq.k(), r0, y.len());
    assert!(
        isa.fits(w),
        "gemv_rows_int8: {w:?} has no {isa:?} int8 kernel (see Int8Isa::fits)"
    );
    if let Some(c) = converted {
        assert!(
            c.fits(w),
            "gemv_rows_int8: converted codebooks not of {w:?}"
        );
    }
    match isa {
        Int8Isa::Scalar => scalar::gemv_rows_int8(w, xq, y, r0, alpha, beta),
        // SAFETY: `check` found the features; xq has K entries; `int8_fits`;
        // `converted` fits w.
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx512Vnni => unsafe {
            avx512_vnni::gemv_rows(w, converted, xq, y, r0, alpha, beta)
        },
        // SAFETY: as above, and b = 4 (`fits`).
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx2Vnni => unsafe { avx2_vnni::gemv_rows(w, xq, y, r0, alpha, beta) },
        #[cfg(not(target_arch = "x86_64"))]
        Int8Isa::Avx512Vnni | Int8Isa::Avx2Vnni => unreachable!("checked"),
    }
}

/// y := beta·y + alpha·Ŵ·x̂ (x̂ = x quantized to int8) on the calling thread.
pub fn gemv_int8(isa: Int8Isa, w: &CbMatrix, x: &[f32], y: &mut [f32], alpha: f32, beta: f32) {
    assert_eq!(
        (x.len(), y.len()),
        (w.k(), w.n()),
        "gemv_int8: x [{}], y [{}] against Ŵ [{}, {}]",
        x.len(),
        y.len(),
        w.n(),
        w.k()
    );
    gemv_rows_int8(isa, w, None, &Q8Vector::new(x), y, 0, Scale { alpha, beta })
}

/// Panics unless `isa` runs here and fits `w`, and a block's rows of X
/// (their lengths `ks`) and columns `cols` are `w`'s: the checks of
/// [`gemv_block_int8`], [`gemm_block_int8`] and [`gemm_block_panels`].
fn check_block(
    what: &str,
    isa: Int8Isa,
    w: &CbMatrix,
    mut ks: impl Iterator<Item = usize>,
    cols: (usize, usize),
) {
    isa.check();
    assert!(
        ks.all(|k| k == w.k()) && cols.0 <= cols.1 && cols.1 <= w.n(),
        "{what}: rows of X and columns {}..{} against Ŵ [{}, {}]",
        cols.0,
        cols.1,
        w.n(),
        w.k()
    );
    assert!(
        isa.fits(w),
        "{what}: {w:?} has no {isa:?} int8 kernel (see Int8Isa::fits)"
    );
}

/// A block of the int8 GEMV of several vectors in memory: the vectors
/// (`xq`, one row of C each, C row r at `c + r·ldc`) and the rows `i` of Ŵ
/// in `cols.0 .. cols.1` (columns of C).
#[derive(Clone, Copy, Debug)]
pub struct Int8GemvBlock<'x> {
    pub xq: &'x [Q8Vector],
    pub cols: (usize, usize),
    pub c: *mut f32,
    pub ldc: usize,
}

/// C[r, i] := beta·C[r, i] + alpha·Ŵ[i, :]·x̂_r for every vector r of
/// `block.xq` and the rows `i` of Ŵ in `block.cols` ([`Int8GemvBlock`],
/// [`Scale`]): the int8 GEMV of each vector, with `isa`, **each output
/// bit for bit what [`gemv_rows_int8`] gives for its vector alone**,
/// however many vectors come with it. The AVX-512 kernel looks each group
/// of weights up once for 4 vectors; the others run the GEMV vector by
/// vector. (A product of few rows that must not depend on its row count,
/// as the verification of drafted tokens: docs/speculation.md.)
///
/// # Safety
/// C holds those rows and columns; no other thread writes them. Panics
/// unless `isa` runs here, every vector has K entries, the columns are rows
/// of Ŵ, [`Int8Isa::fits`] holds and `converted` (if any) fits `w`.
pub unsafe fn gemv_block_int8(
    isa: Int8Isa,
    w: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    Int8GemvBlock { xq, cols, c, ldc }: Int8GemvBlock,
    scale: Scale,
) {
    check_block("gemv_block_int8", isa, w, xq.iter().map(Q8Vector::k), cols);
    if let Some(conv) = converted {
        assert!(
            conv.fits(w),
            "gemv_block_int8: converted codebooks not of {w:?}"
        );
    }
    let (c0, c1) = cols;
    if xq.is_empty() || c0 == c1 {
        return;
    }
    let ys: Vec<*mut f32> = (0..xq.len()).map(|r| c.add(r * ldc + c0)).collect();
    match isa {
        // SAFETY: `check` found the features; the vectors have K entries;
        // `int8_fits`; `converted` fits w; C holds the block.
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx512Vnni => avx512_vnni::gemv_many(
            w,
            converted,
            (xq, &ys),
            (c0, c1 - c0),
            scale.alpha,
            scale.beta,
        ),
        _ => {
            for (xq, &y) in xq.iter().zip(&ys) {
                // SAFETY: C row r holds columns c0..c1, written by no one else.
                let y = std::slice::from_raw_parts_mut(y, c1 - c0);
                gemv_rows_int8(isa, w, converted, xq, y, c0, scale);
            }
        }
    }
}

/// A block of the int8-activation GEMM in memory: the rows of X̂ it takes
/// (`xq`, one row of C each, C row r at `c + r·ldc`) and the rows `i` of Ŵ
/// in `cols.0 .. cols.1` (columns of C).
#[derive(Clone, Copy, Debug)]
pub struct Int8GemmBlock<'x> {
    pub xq: &'x [Q8Row],
    pub cols: (usize, usize),
    pub c: *mut f32,
    pub ldc: usize,
}

/// C[r, i] := beta·C[r, i] + alpha·Ŵ[i, :]·x̂_r for every row r of
/// `block.xq` and the rows `i` of Ŵ in `block.cols` ([`Int8GemmBlock`],
/// [`Scale`]): the int8-activation GEMM (prefill), with `isa`.
///
/// Per output, the exact integer sums of the GEMV, group by group, then one
/// f32 fused multiply-add per group by `s_c·s_x[g]` in k order (the module
/// comment): the int8 GEMV's value to within f32 rounding. The AVX-512
/// kernel computes tiles of [`GEMM_ROWS`] rows of X by [`GEMM_COLS`] rows
/// of Ŵ; the scalar twin (also used for [`Int8Isa::Avx2Vnni`], which has
/// no GEMM kernel of its own) computes output by output, with the same f32
/// operations, bit for bit.
///
/// # Safety
/// C holds those rows and columns; no other thread writes them. Panics
/// unless `isa` runs here, every row has K entries, the columns are rows of
/// Ŵ and [`Int8Isa::fits`] holds.
pub unsafe fn gemm_block_int8(
    isa: Int8Isa,
    w: &CbMatrix,
    Int8GemmBlock { xq, cols, c, ldc }: Int8GemmBlock,
    Scale { alpha, beta }: Scale,
) {
    check_block("gemm_block_int8", isa, w, xq.iter().map(Q8Row::k), cols);
    if xq.is_empty() || cols.0 == cols.1 {
        return;
    }
    match isa {
        // SAFETY: `check` found the features; the rows have K entries; `int8_fits`.
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx512Vnni => avx512_vnni::gemm_block(w, xq, cols, c, ldc, alpha, beta),
        _ => scalar::gemm_block_int8(w, xq, cols, c, ldc, alpha, beta),
    }
}

/// [`gemm_block_int8`] from `w`'s panels ([`Int8Panels`]): the same
/// outputs bit for bit, for any number of rows (one included) at about the
/// int8 GEMV's cost for one row, with the AVX-512 kernel; other ISAs run
/// [`gemm_block_int8`] on `w` itself.
///
/// # Safety
/// As [`gemm_block_int8`]. Panics unless `panels` are `w`'s shape.
pub unsafe fn gemm_block_panels(
    isa: Int8Isa,
    w: &CbMatrix,
    panels: &Int8Panels,
    block: Int8GemmBlock,
    scale: Scale,
) {
    assert!(
        panels.fits(w),
        "gemm_block_panels: panels of [{}, {}] b={} against {w:?}",
        panels.n(),
        panels.k(),
        panels.bits()
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx512Vnni => {
            let Int8GemmBlock { xq, cols, c, ldc } = block;
            check_block("gemm_block_panels", isa, w, xq.iter().map(Q8Row::k), cols);
            if xq.is_empty() || cols.0 == cols.1 {
                return;
            }
            // SAFETY: `check` found the features; the rows have K entries;
            // C holds the block, per the caller.
            avx512_panels::gemm_block(panels, xq, cols, c, ldc, (scale.alpha, scale.beta))
        }
        _ => gemm_block_int8(isa, w, block, scale),
    }
}

/// Rows of X per register tile of the AVX-512 int8 GEMM.
pub const GEMM_ROWS: usize = 6;

/// Rows of Ŵ per register tile of the AVX-512 int8 GEMM (two registers of
/// 16 dword lanes).
pub const GEMM_COLS: usize = 32;

/// C := beta·C + alpha·X̂·Ŵᵀ (X̂ = X [m, K] quantized row by row, row r at
/// `x[r·ldx ..]`; C [m, N], row r at `c[r·ldc ..]`) on the calling thread.
pub fn gemm_int8(isa: Int8Isa, w: &CbMatrix, rows: super::GemmRows) {
    let super::GemmRows {
        m,
        x,
        ldx,
        c,
        ldc,
        alpha,
        beta,
    } = rows;
    let (n, k) = (w.n(), w.k());
    if m == 0 {
        return;
    }
    assert!(
        x.len() >= (m - 1) * ldx + k && ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm_int8: X [{m}, {k}] (stride {ldx}) in {} values, C [{m}, {n}] (stride {ldc}) in {}",
        x.len(),
        c.len()
    );
    let rows: Vec<Q8Row> = (0..m)
        .map(|r| {
            let mut row = Q8Row::default();
            row.set(&Q8Vector::new_with(isa, &x[r * ldx..r * ldx + k]));
            row
        })
        .collect();
    // SAFETY: C [m, N] checked above and borrowed mutably.
    unsafe {
        gemm_block_int8(
            isa,
            w,
            Int8GemmBlock {
                xq: &rows,
                cols: (0, n),
                c: c.as_mut_ptr(),
                ldc,
            },
            Scale { alpha, beta },
        )
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    /// The AVX-512 conversion of whole matrices gives the scalar twin's
    /// bytes and scales (the all-zero codebook included).
    #[test]
    fn converted_codebooks_agree_between_kernels() {
        if !Int8Isa::Avx512Vnni.runs_here() {
            eprintln!(
                "note: no AVX-512 VBMI + VNNI here; nothing to compare the scalar conversion with"
            );
            return;
        }
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for bits in 2..=6usize {
            let (n, k, block) = (6, 128, 64);
            let levels = 1 << bits;
            let blocks = n * k / block;
            let mut codebooks: Vec<f16> = (0..blocks * levels)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    f16::from_f32(((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0)
                })
                .collect();
            codebooks[..levels].fill(f16::ZERO);
            let indices = vec![0u8; n * k * bits / 8];
            let w = CbMatrix::new(n, k, bits, block, &indices, &codebooks).unwrap();
            let (simd, scalar) = (Int8Codebooks::new(&w), Int8Codebooks::new_scalar(&w));
            assert_eq!(simd.tables, scalar.tables, "b = {bits}");
            let same =
                |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same(&simd.scales, &scalar.scales), "b = {bits}");
        }
    }
}
