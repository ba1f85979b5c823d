//! x86-64 kernels for AVX-512 (F + BW): 16 f32 lanes per `zmm` register.
//!
//! The same plan as `avx2.rs`, twice as wide and with fewer instructions per
//! lookup, because a `zmm` holds a 16-entry table and `vpermt2ps` indexes 32
//! entries held in two registers. Per segment the codebook is widened once;
//! then every 16 weights (2b bytes):
//!
//! * unpack 16 indices into 16 dword lanes:
//!   - b = 2: they lie in one u32: broadcast, shift lane t right by 2t;
//!   - b = 3, 4, 5, 6: broadcast 16 bytes to the four 128-bit lanes, `vpshufb`
//!     (AVX512BW) moves bytes ⌊t·b/8⌋ and ⌊t·b/8⌋+1 into lane t, `vpsrlvd`
//!     shifts right by t·b mod 8;
//!   - b = 8: zero-extend 32 bytes to words (`vpmovzxbw`).
//! * look up:
//!   - b = 2, 3, 4: one `vpermps` (low 4 bits; 4 and 8 entries are stored
//!     4 and 2 times over, so the bits above the index do not matter);
//!   - b = 5: one `vpermt2ps` over two registers (low 5 bits);
//!   - b = 6: two `vpermt2ps` (entries 0-31, 32-63) and a masked blend on
//!     bit 5 (`vptestmd`);
//!   - b = 8: the table stays f16, 256 words in eight registers: four
//!     `vpermt2w` (64 entries each, bits 0-5) on 32 indices at once, masked
//!     word blends on bits 6 and 7, then `vcvtph2ps` of the 32 results.
//!     (A `vgatherdps` from a widened f32 table in L1 was 4.7x slower on
//!     the Zen 5 this was measured on: 415 against 88 us for 896 x 896.)
//! * `vfmadd231ps` into one of four accumulators (GEMV) or store (decode).
//!
//! Tails use masked loads, FMAs and stores. The GEMV sums element i of a
//! segment into lane i mod 64 and reduces by halving: it agrees bit for bit
//! with `scalar::gemv_rows::<64>`.

use std::arch::x86_64::*;

use half::f16;

use super::gemm::Gemm;
use super::layout::{direct_groups, epilogue, tail_bytes, CbMatrix, Segment};

/// Lanes per register.
const L: usize = 16;
/// Accumulator registers in the GEMV.
const U: usize = 4;
/// Partial sums of the GEMV: its scalar twin is `scalar::gemv_rows::<GEMV_LANES>`.
pub(crate) const GEMV_LANES: usize = U * L;

/// One block's codebook, ready to turn 16 packed indices into 16 weights.
trait Lut {
    /// Index width b: 16 indices take 2b bytes.
    const BITS: usize;
    /// Bytes `get` reads from its pointer (≥ 2b).
    const READ: usize;
    /// Bytes `get2` reads from its pointer (≥ 4b).
    const READ2: usize = 2 * Self::BITS + Self::READ;
    unsafe fn new(codebook: &[f16]) -> Self;
    /// The weights of the 16 indices packed at `p`.
    unsafe fn get(&self, p: *const u8) -> __m512;
    /// The weights of the 32 indices packed at `p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get2(&self, p: *const u8) -> (__m512, __m512) {
        (self.get(p), self.get(p.add(2 * Self::BITS)))
    }
}

/// Unpacks 16 b-bit indices with `vpshufb` + `vpsrlvd` (see the module
/// docs); the controls are constants.
struct Windows<const B: usize>;

impl<const B: usize> Windows<B> {
    /// Bytes ⌊t·b/8⌋ and ⌊t·b/8⌋+1 into the low half of lane t (`vpshufb`
    /// indexes within each 128-bit lane, and all four hold the same 16
    /// bytes); -128 zeroes a byte.
    const SHUFFLE: [i8; 64] = {
        let mut shuffle = [-128i8; 64];
        let mut t = 0;
        while t < 16 {
            shuffle[4 * t] = (t * B / 8) as i8;
            shuffle[4 * t + 1] = (t * B / 8) as i8 + 1;
            t += 1;
        }
        shuffle
    };
    /// t·b mod 8.
    const SHIFTS: [i32; 16] = {
        let mut shifts = [0i32; 16];
        let mut t = 0;
        while t < 16 {
            shifts[t] = (t * B % 8) as i32;
            t += 1;
        }
        shifts
    };

    /// Lane t: index t in its low b bits, other bits above (reads 16 bytes).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> __m512i {
        let (shuffle, shifts): (&'static [i8; 64], &'static [i32; 16]) =
            (&Self::SHUFFLE, &Self::SHIFTS);
        let shuffle = _mm512_loadu_si512(shuffle.as_ptr() as *const _);
        let shifts = _mm512_loadu_si512(shifts.as_ptr() as *const _);
        let bytes = _mm512_broadcast_i32x4(_mm_loadu_si128(p as *const __m128i));
        _mm512_srlv_epi32(_mm512_shuffle_epi8(bytes, shuffle), shifts)
    }
}

/// 16 f16 at `p` as f32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn widen16(p: *const f16) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
}

struct Lut2(__m512);
impl Lut for Lut2 {
    const BITS: usize = 2;
    const READ: usize = 4;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let four = _mm_loadl_epi64(codebook.as_ptr() as *const __m128i);
        let sixteen = _mm256_broadcastsi128_si256(_mm_unpacklo_epi64(four, four));
        Lut2(_mm512_cvtph_ps(sixteen)) // c0..c3 four times
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        let word = (p as *const u32).read_unaligned() as i32;
        let shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_set1_epi32(word), shifts), self.0)
    }
}

struct Lut3 {
    table: __m512,
}
impl Lut for Lut3 {
    const BITS: usize = 3;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let eight = _mm_loadu_si128(codebook.as_ptr() as *const __m128i);
        Lut3 {
            table: _mm512_cvtph_ps(_mm256_broadcastsi128_si256(eight)), // c0..c7 twice
        }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        _mm512_permutexvar_ps(Windows::<3>::unpack(p), self.table)
    }
}

struct Lut4 {
    table: __m512,
}
impl Lut for Lut4 {
    const BITS: usize = 4;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        Lut4 {
            table: widen16(codebook.as_ptr()),
        }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        _mm512_permutexvar_ps(Windows::<4>::unpack(p), self.table)
    }
}

struct Lut5 {
    table: [__m512; 2],
}
impl Lut for Lut5 {
    const BITS: usize = 5;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr();
        Lut5 {
            table: [widen16(c), widen16(c.add(16))],
        }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        _mm512_permutex2var_ps(self.table[0], Windows::<5>::unpack(p), self.table[1])
    }
}

struct Lut6 {
    table: [__m512; 4],
}
impl Lut for Lut6 {
    const BITS: usize = 6;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr();
        Lut6 {
            table: [
                widen16(c),
                widen16(c.add(16)),
                widen16(c.add(32)),
                widen16(c.add(48)),
            ],
        }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        let idx = Windows::<6>::unpack(p);
        let t = &self.table;
        let lo = _mm512_permutex2var_ps(t[0], idx, t[1]);
        let hi = _mm512_permutex2var_ps(t[2], idx, t[3]);
        _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(32)), lo, hi)
    }
}

/// b = 8: the 256 centroids stay f16, as words in eight registers
/// (64 per pair); the lookup works on words, 32 indices at a time, and only
/// the result is widened.
struct Lut8([__m512i; 8]);

impl Lut8 {
    /// The f16 centroids of the 32 indices in `idx`'s words (bits 0-7).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn words(&self, idx: __m512i) -> __m512i {
        let t = &self.0;
        // Entries 0-63, 64-127, 128-191, 192-255: `vpermt2w` reads bits 0-5.
        let r0 = _mm512_permutex2var_epi16(t[0], idx, t[1]);
        let r1 = _mm512_permutex2var_epi16(t[2], idx, t[3]);
        let r2 = _mm512_permutex2var_epi16(t[4], idx, t[5]);
        let r3 = _mm512_permutex2var_epi16(t[6], idx, t[7]);
        let bit6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(64));
        let bit7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(128));
        let lo = _mm512_mask_blend_epi16(bit6, r0, r1);
        let hi = _mm512_mask_blend_epi16(bit6, r2, r3);
        _mm512_mask_blend_epi16(bit7, lo, hi)
    }
}

impl Lut for Lut8 {
    const BITS: usize = 8;
    const READ: usize = 16;
    const READ2: usize = 32;
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr() as *const __m512i;
        Lut8(std::array::from_fn(|i| _mm512_loadu_si512(c.add(i))))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get(&self, p: *const u8) -> __m512 {
        // 16 indices in the low 16 words (the upper 16 are looked up and dropped).
        let idx =
            _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128(p as *const __m128i)));
        _mm512_cvtph_ps(_mm512_castsi512_si256(self.words(idx)))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn get2(&self, p: *const u8) -> (__m512, __m512) {
        let idx = _mm512_cvtepu8_epi16(_mm256_loadu_si256(p as *const __m256i));
        let w = self.words(idx);
        (
            _mm512_cvtph_ps(_mm512_castsi512_si256(w)),
            _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(w)),
        )
    }
}

/// Lanes below `n` (≤ 16).
#[inline]
fn lanes_below(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// acc += weights(p) · x over the first `n` lanes (the others keep acc).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn partial_fma<T: Lut>(
    lut: &T,
    p: *const u8,
    x: *const f32,
    n: usize,
    acc: __m512,
) -> __m512 {
    let mask = lanes_below(n);
    _mm512_mask3_fmadd_ps(lut.get(p), _mm512_maskz_loadu_ps(mask, x), acc, mask)
}

/// acc[i/16 mod 4][i mod 16] += Ŵ_i · x[i] over one segment.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn dot<T: Lut>(seg: &Segment, x: &[f32], acc: &mut [__m512; U]) {
    let lut = T::new(seg.codebook);
    let v = 2 * T::BITS; // bytes per 16 weights
    let (p, x) = (seg.indices.as_ptr(), &x[..seg.len]);
    // Group g (4·2b bytes) is read by two `get2`s, the last at 2·2b.
    let groups = direct_groups(seg.indices, 4 * v, 2 * v + T::READ2);
    let direct = (seg.len / (U * L)).min(groups);
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    for g in 0..direct {
        // 64 weights: index bytes [4·g·2b, 4·(g+1)·2b), x[64·g .. 64·(g+1)]
        let (p, xg) = (p.add(4 * g * v), x.as_ptr().add(U * L * g));
        let (w0, w1) = lut.get2(p);
        let (w2, w3) = lut.get2(p.add(2 * v));
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xg), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xg.add(16)), a1);
        a2 = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xg.add(32)), a2);
        a3 = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xg.add(48)), a3);
    }
    // The rest, 64 weights at a time, through a zero-padded copy of the bytes.
    for from in (direct * U * L..seg.len).step_by(U * L) {
        let n = (seg.len - from).min(U * L);
        let buf = tail_bytes::<80>(seg.indices, from, n, T::BITS);
        let (q, xg) = (buf.as_ptr(), x.as_ptr().add(from));
        a0 = partial_fma(&lut, q, xg, n, a0);
        if n > 16 {
            a1 = partial_fma(&lut, q.add(v), xg.add(16), n - 16, a1);
        }
        if n > 32 {
            a2 = partial_fma(&lut, q.add(2 * v), xg.add(32), n - 32, a2);
        }
        if n > 48 {
            a3 = partial_fma(&lut, q.add(3 * v), xg.add(48), n - 48, a3);
        }
    }
    *acc = [a0, a1, a2, a3];
}

/// The 64 partial sums reduced by halving (as `reduce_halving::<64>`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn reduce(acc: [__m512; U]) -> f32 {
    let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
    let s = _mm256_add_ps(_mm512_castps512_ps256(s), hi); // l + l+8
    let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s)); // l + l+4
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h)); // l + l+2
    let h = _mm_add_ss(h, _mm_shuffle_ps::<1>(h, h)); // 0 + 1
    _mm_cvtss_f32(h)
}

#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn gemv_rows_with<T: Lut>(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    for (i, out) in y.iter_mut().enumerate() {
        let mut acc = [_mm512_setzero_ps(); U];
        for seg in m.segments(r0 + i, 0, m.k()) {
            dot::<T>(&seg, &x[seg.k0..], &mut acc);
        }
        *out = epilogue(reduce(acc), *out, alpha, beta);
    }
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x for the rows of `y`.
///
/// # Safety
/// The CPU has AVX-512 F and BW (and AVX2, FMA, F16C); `x` has K entries.
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
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn decode<T: Lut>(seg: &Segment, out: &mut [f32]) {
    let lut = T::new(seg.codebook);
    let v = 2 * T::BITS;
    let p = seg.indices.as_ptr();
    let direct = (seg.len / L).min(direct_groups(seg.indices, 2 * T::BITS, T::READ));
    for i in 0..direct {
        _mm512_storeu_ps(out.as_mut_ptr().add(L * i), lut.get(p.add(i * v)));
    }
    for from in (direct * L..seg.len).step_by(L) {
        let n = (seg.len - from).min(L);
        let buf = tail_bytes::<80>(seg.indices, from, n, T::BITS);
        _mm512_mask_storeu_ps(
            out.as_mut_ptr().add(from),
            lanes_below(n),
            lut.get(buf.as_ptr()),
        );
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn decode_range_with<T: Lut>(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    for seg in m.segments(row, k0, k0 + out.len()) {
        let at = seg.k0 - k0;
        decode::<T>(&seg, &mut out[at..at + seg.len]);
    }
}

/// out := Ŵ[row, k0 .. k0 + out.len()].
///
/// # Safety
/// The CPU has AVX-512 F and BW (and AVX2, FMA, F16C).
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

/// The GEMM register tile: 8 rows of X × 32 columns (2 registers) of the
/// panel, 16 accumulators. Per k: two panel loads, eight broadcasts of X,
/// sixteen FMAs.
pub(crate) struct Avx512Gemm;

const MR: usize = 8;

#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
    let xs: [*const f32; MR] = std::array::from_fn(|r| xs[r]);
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    for (r, c) in c.iter_mut().enumerate() {
        *c = [
            _mm512_loadu_ps(s.add(32 * r)),
            _mm512_loadu_ps(s.add(32 * r + 16)),
        ];
    }
    for k in 0..kc {
        let p0 = _mm512_loadu_ps(panel.add(32 * k));
        let p1 = _mm512_loadu_ps(panel.add(32 * k + 16));
        for r in 0..MR {
            let xb = _mm512_set1_ps(*xs[r].add(k));
            c[r][0] = _mm512_fmadd_ps(xb, p0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(xb, p1, c[r][1]);
        }
    }
    for (r, c) in c.iter().enumerate() {
        _mm512_storeu_ps(s.add(32 * r), c[0]);
        _mm512_storeu_ps(s.add(32 * r + 16), c[1]);
    }
}

impl Gemm for Avx512Gemm {
    const MR: usize = MR;
    const NR: usize = 32;

    unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
        decode_range(m, row, k0, out)
    }

    unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
        tile(kc, xs, panel, s)
    }
}
