//! x86-64 kernels for AVX2 + FMA + F16C: 8 f32 lanes per `ymm` register.
//!
//! # How a weight is looked up
//!
//! Per segment (one row's run of weights sharing one codebook), the block's
//! `2^b` f16 centroids are widened to f32 once (`vcvtph2ps`) and kept in
//! registers or, for the largest codebooks, in a small table in L1. Then
//! every 8 weights (b bytes of the stream):
//!
//! * unpack 8 indices into the 8 dword lanes of a `ymm`:
//!   - b = 2, 3, 4: the 8 indices lie in one u32 (16, 24, 32 bits):
//!     broadcast it and shift lane t right by t·b (`vpsrlvd`);
//!   - b = 5, 6: 40/48 bits: broadcast the u64 and let `vpshufb` move the two
//!     bytes holding index t (bytes ⌊t·b/8⌋, +1) into lane t, then shift
//!     right by t·b mod 8;
//!   - b = 8: zero-extend 8 bytes (`vpmovzxbd`).
//!
//!   Bits above an index are left in place when the lookup ignores them.
//! * look the indices up:
//!   - b = 2, 3: `vpermps` on one register (it reads only the low 3 bits;
//!     b = 2's 4 entries are stored twice so bit 2 does not matter);
//!   - b = 4: 16 entries in two registers: `vpermps` on both, then
//!     `vblendvps` on bit 3 (moved into the sign bit by a shift left of 28);
//!   - b = 5: 32 entries in four registers: four `vpermps`, blends on bit 3,
//!     then on bit 4;
//!   - b = 6, 8: `vgatherdps` from the widened table (64 or 256 f32, L1);
//!     slow where gathers are microcoded (AMD: b = 8 runs at about 1.5 G
//!     weights/s a core), but AVX2 has no wider permute to replace it.
//! * `vfmadd231ps` into one of four accumulators (GEMV), or store (decode).
//!
//! The GEMV sums element i of a segment into lane i mod 32 of the four
//! accumulators and reduces them by halving at the end of the row, which
//! is what `scalar::gemv_rows::<32>` does: the two agree bit for bit.

use std::arch::x86_64::*;

use half::f16;

use super::gemm::Gemm;
use super::layout::{direct_groups, epilogue, tail_bytes, CbMatrix, Segment};

/// Lanes per register.
const L: usize = 8;
/// Accumulator registers in the GEMV (enough to hide the FMA latency).
const U: usize = 4;
/// Partial sums of the GEMV: its scalar twin is `scalar::gemv_rows::<GEMV_LANES>`.
pub(crate) const GEMV_LANES: usize = U * L;

/// One block's codebook, ready to turn 8 packed indices into 8 weights.
trait Lut {
    /// Index width b: 8 indices take b bytes.
    const BITS: usize;
    /// Bytes `get` reads from its pointer (≥ b).
    const READ: usize;
    /// Widens `codebook` (2^b f16).
    unsafe fn new(codebook: &[f16]) -> Self;
    /// The weights of the 8 indices packed at `p`.
    unsafe fn get(&self, p: *const u8) -> __m256;
}

/// The 8 indices in one u32, lane t shifted right by t·b.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_u32<const B: i32>(p: *const u8) -> __m256i {
    let word = (p as *const u32).read_unaligned() as i32;
    let shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
    _mm256_srlv_epi32(_mm256_set1_epi32(word), shifts)
}

/// Unpacks 8 indices of 40 or 48 bits (b = 5, 6) with `vpshufb` +
/// `vpsrlvd`; the controls are constants.
struct Windows<const B: usize>;

impl<const B: usize> Windows<B> {
    /// Bytes ⌊t·b/8⌋ and ⌊t·b/8⌋+1 into the low half of lane t (each
    /// 128-bit half holds the same 8 source bytes); -128 zeroes a byte.
    const SHUFFLE: [i8; 32] = {
        let mut shuffle = [-128i8; 32];
        let mut t = 0;
        while t < 8 {
            shuffle[4 * t] = (t * B / 8) as i8;
            shuffle[4 * t + 1] = (t * B / 8) as i8 + 1;
            t += 1;
        }
        shuffle
    };
    /// t·b mod 8.
    const SHIFTS: [i32; 8] = {
        let mut shifts = [0i32; 8];
        let mut t = 0;
        while t < 8 {
            shifts[t] = (t * B % 8) as i32;
            t += 1;
        }
        shifts
    };

    /// Lane t: index t in its low b bits, other bits above (reads 8 bytes).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> __m256i {
        let (shuffle, shifts): (&'static [i8; 32], &'static [i32; 8]) =
            (&Self::SHUFFLE, &Self::SHIFTS);
        let shuffle = _mm256_loadu_si256(shuffle.as_ptr() as *const __m256i);
        let shifts = _mm256_loadu_si256(shifts.as_ptr() as *const __m256i);
        let word = _mm256_set1_epi64x((p as *const i64).read_unaligned());
        _mm256_srlv_epi32(_mm256_shuffle_epi8(word, shuffle), shifts)
    }
}

/// 8 f16 at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn widen8(p: *const f16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
}

/// Lanes whose bit `BIT` is set select from `hi`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn select<const SHIFT: i32>(idx: __m256i, lo: __m256, hi: __m256) -> __m256 {
    _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32::<SHIFT>(idx)))
}

struct Lut2(__m256);
impl Lut for Lut2 {
    const BITS: usize = 2;
    const READ: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let four = _mm_cvtph_ps(_mm_loadl_epi64(codebook.as_ptr() as *const __m128i));
        Lut2(_mm256_set_m128(four, four)) // [c0 c1 c2 c3 c0 c1 c2 c3]
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        _mm256_permutevar8x32_ps(self.0, unpack_u32::<2>(p))
    }
}

struct Lut3(__m256);
impl Lut for Lut3 {
    const BITS: usize = 3;
    const READ: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        Lut3(widen8(codebook.as_ptr()))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        _mm256_permutevar8x32_ps(self.0, unpack_u32::<3>(p))
    }
}

struct Lut4([__m256; 2]);
impl Lut for Lut4 {
    const BITS: usize = 4;
    const READ: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr();
        Lut4([widen8(c), widen8(c.add(8))])
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        let idx = unpack_u32::<4>(p);
        let lo = _mm256_permutevar8x32_ps(self.0[0], idx);
        let hi = _mm256_permutevar8x32_ps(self.0[1], idx);
        select::<28>(idx, lo, hi) // bit 3
    }
}

struct Lut5 {
    table: [__m256; 4],
}
impl Lut for Lut5 {
    const BITS: usize = 5;
    const READ: usize = 8;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr();
        Lut5 {
            table: [
                widen8(c),
                widen8(c.add(8)),
                widen8(c.add(16)),
                widen8(c.add(24)),
            ],
        }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        let idx = Windows::<5>::unpack(p);
        let t = &self.table;
        let lo = select::<28>(
            idx,
            _mm256_permutevar8x32_ps(t[0], idx),
            _mm256_permutevar8x32_ps(t[1], idx),
        );
        let hi = select::<28>(
            idx,
            _mm256_permutevar8x32_ps(t[2], idx),
            _mm256_permutevar8x32_ps(t[3], idx),
        );
        select::<27>(idx, lo, hi) // bit 4
    }
}

/// b = 6: 64 f32 in L1, gathered.
struct Lut6 {
    table: [f32; 64],
}
impl Lut for Lut6 {
    const BITS: usize = 6;
    const READ: usize = 8;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let mut table = [0.0f32; 64];
        for i in (0..64).step_by(8) {
            _mm256_storeu_ps(table.as_mut_ptr().add(i), widen8(codebook.as_ptr().add(i)));
        }
        Lut6 { table }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        let idx = _mm256_and_si256(Windows::<6>::unpack(p), _mm256_set1_epi32(63));
        _mm256_i32gather_ps::<4>(self.table.as_ptr(), idx)
    }
}

/// b = 8: 256 f32 in L1, gathered.
struct Lut8([f32; 256]);
impl Lut for Lut8 {
    const BITS: usize = 8;
    const READ: usize = 8;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let mut table = [0.0f32; 256];
        for i in (0..256).step_by(8) {
            _mm256_storeu_ps(table.as_mut_ptr().add(i), widen8(codebook.as_ptr().add(i)));
        }
        Lut8(table)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m256 {
        let idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i));
        _mm256_i32gather_ps::<4>(self.0.as_ptr(), idx)
    }
}

/// Lanes below `n` set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lanes_below(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// acc += weights(p) · x over the first `n` lanes (the others keep acc).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn partial_fma<T: Lut>(
    lut: &T,
    p: *const u8,
    x: *const f32,
    n: usize,
    acc: __m256,
) -> __m256 {
    let mask = lanes_below(n);
    let sum = _mm256_fmadd_ps(lut.get(p), _mm256_maskload_ps(x, mask), acc);
    _mm256_blendv_ps(acc, sum, _mm256_castsi256_ps(mask))
}

/// acc[i/8 mod 4][i mod 8] += Ŵ_i · x[i] over one segment.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot<T: Lut>(seg: &Segment, x: &[f32], acc: &mut [__m256; U]) {
    let lut = T::new(seg.codebook);
    let b = T::BITS; // bytes per 8 weights
    let (p, x) = (seg.indices.as_ptr(), &x[..seg.len]);
    // Group g (4b bytes) is read by four `get`s, the last at 3b.
    let direct = (seg.len / (U * L)).min(direct_groups(seg.indices, 4 * b, 3 * b + T::READ));
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    for g in 0..direct {
        // 32 weights: index bytes [4·g·b, 4·(g+1)·b), x[32·g .. 32·(g+1)]
        let (p, xg) = (p.add(4 * g * b), x.as_ptr().add(U * L * g));
        a0 = _mm256_fmadd_ps(lut.get(p), _mm256_loadu_ps(xg), a0);
        a1 = _mm256_fmadd_ps(lut.get(p.add(b)), _mm256_loadu_ps(xg.add(8)), a1);
        a2 = _mm256_fmadd_ps(lut.get(p.add(2 * b)), _mm256_loadu_ps(xg.add(16)), a2);
        a3 = _mm256_fmadd_ps(lut.get(p.add(3 * b)), _mm256_loadu_ps(xg.add(24)), a3);
    }
    // The rest, 32 weights at a time, through a zero-padded copy of the bytes.
    for from in (direct * U * L..seg.len).step_by(U * L) {
        let n = (seg.len - from).min(U * L);
        let buf = tail_bytes::<48>(seg.indices, from, n, b);
        let (q, xg) = (buf.as_ptr(), x.as_ptr().add(from));
        a0 = partial_fma(&lut, q, xg, n, a0);
        if n > 8 {
            a1 = partial_fma(&lut, q.add(b), xg.add(8), n - 8, a1);
        }
        if n > 16 {
            a2 = partial_fma(&lut, q.add(2 * b), xg.add(16), n - 16, a2);
        }
        if n > 24 {
            a3 = partial_fma(&lut, q.add(3 * b), xg.add(24), n - 24, a3);
        }
    }
    *acc = [a0, a1, a2, a3];
}

/// The 32 partial sums reduced by halving (as `reduce_halving::<32>`):
/// a0 + a2, a1 + a3, then their sum, then each register's halves.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn reduce(acc: [__m256; U]) -> f32 {
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s)); // l + l+4
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h)); // l + l+2
    let h = _mm_add_ss(h, _mm_shuffle_ps::<1>(h, h)); // 0 + 1
    _mm_cvtss_f32(h)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_rows_with<T: Lut>(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    for (i, out) in y.iter_mut().enumerate() {
        let mut acc = [_mm256_setzero_ps(); U];
        for seg in m.segments(r0 + i, 0, m.k()) {
            dot::<T>(&seg, &x[seg.k0..], &mut acc);
        }
        *out = epilogue(reduce(acc), *out, alpha, beta);
    }
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x for the rows of `y`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `x` has K entries.
pub(crate) unsafe fn gemv_rows(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    match m.bits() {
        2 => gemv_rows_with::<Lut2>(m, x, y, r0, alpha, beta),
        3 => gemv_rows_with::<Lut3>(m, x, y, r0, alpha, beta),
        4 => gemv_rows_with::<Lut4>(m, x, y, r0, alpha, beta),
        5 => gemv_rows_with::<Lut5>(m, x, y, r0, alpha, beta),
        6 => gemv_rows_with::<Lut6>(m, x, y, r0, alpha, beta),
        _ => gemv_rows_with::<Lut8>(m, x, y, r0, alpha, beta),
    }
}

/// out := the segment's weights (out.len() = seg.len).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode<T: Lut>(seg: &Segment, out: &mut [f32]) {
    let lut = T::new(seg.codebook);
    let b = T::BITS;
    let p = seg.indices.as_ptr();
    let direct = (seg.len / L).min(direct_groups(seg.indices, b, T::READ));
    for v in 0..direct {
        _mm256_storeu_ps(out.as_mut_ptr().add(L * v), lut.get(p.add(v * b)));
    }
    for from in (direct * L..seg.len).step_by(L) {
        let n = (seg.len - from).min(L);
        let buf = tail_bytes::<48>(seg.indices, from, n, b);
        _mm256_maskstore_ps(
            out.as_mut_ptr().add(from),
            lanes_below(n),
            lut.get(buf.as_ptr()),
        );
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode_range_with<T: Lut>(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    for seg in m.segments(row, k0, k0 + out.len()) {
        let at = seg.k0 - k0;
        decode::<T>(&seg, &mut out[at..at + seg.len]);
    }
}

/// out := Ŵ[row, k0 .. k0 + out.len()].
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
pub(crate) unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    match m.bits() {
        2 => decode_range_with::<Lut2>(m, row, k0, out),
        3 => decode_range_with::<Lut3>(m, row, k0, out),
        4 => decode_range_with::<Lut4>(m, row, k0, out),
        5 => decode_range_with::<Lut5>(m, row, k0, out),
        6 => decode_range_with::<Lut6>(m, row, k0, out),
        _ => decode_range_with::<Lut8>(m, row, k0, out),
    }
}

/// The GEMM register tile: 6 rows of X × 16 columns (2 registers) of the
/// panel, 12 accumulators. Per k: two panel loads, six broadcasts of X,
/// twelve FMAs.
pub(crate) struct Avx2Gemm;

const MR: usize = 6;

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
    let xs: [*const f32; MR] = std::array::from_fn(|r| xs[r]);
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    for (r, c) in c.iter_mut().enumerate() {
        *c = [
            _mm256_loadu_ps(s.add(16 * r)),
            _mm256_loadu_ps(s.add(16 * r + 8)),
        ];
    }
    for k in 0..kc {
        let p0 = _mm256_loadu_ps(panel.add(16 * k));
        let p1 = _mm256_loadu_ps(panel.add(16 * k + 8));
        for r in 0..MR {
            let xb = _mm256_broadcast_ss(&*xs[r].add(k));
            c[r][0] = _mm256_fmadd_ps(xb, p0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(xb, p1, c[r][1]);
        }
    }
    for (r, c) in c.iter().enumerate() {
        _mm256_storeu_ps(s.add(16 * r), c[0]);
        _mm256_storeu_ps(s.add(16 * r + 8), c[1]);
    }
}

impl Gemm for Avx2Gemm {
    const MR: usize = MR;
    const NR: usize = 16;

    unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
        decode_range(m, row, k0, out)
    }

    unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
        tile(kc, xs, panel, s)
    }
}
