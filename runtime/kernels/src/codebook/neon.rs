//! aarch64 kernels for NEON (Advanced SIMD): 4 f32 lanes per `q` register,
//! 32 registers.
//!
//! # How a weight is looked up
//!
//! NEON has no f32 permute across registers and no gather, but `tbl` looks
//! up 16 bytes at once in a table of 1 to 4 registers (16 to 64 bytes;
//! an index past the table gives 0). So for b ≤ 6 the codebook stays f16
//! and is split into two *byte planes*: the low bytes and the high bytes of
//! its 2^b entries (`ld2` de-interleaves them as it loads), 16, 32 or 64
//! bytes each. Per segment the planes are loaded once; then every 16
//! weights (2b bytes of the stream):
//!
//! * unpack 16 indices into the 16 bytes of a register:
//!   - b = 2: the 4 bytes hold 4 indices each: `tbl` copies byte ⌊t/4⌋ into
//!     byte t, `ushl` shifts byte t right by 2·(t mod 4);
//!   - b = 4: the 8 bytes' low and high nibbles, interleaved by `zip1`;
//!   - b = 3, 5, 6: `tbl` moves bytes ⌊t·b/8⌋ and ⌊t·b/8⌋+1 into u16 lane t
//!     (indices 0-7 in one register, 8-15 in another), `ushl` shifts lane t
//!     right by t·b mod 8, `uzp1` keeps the low bytes;
//!
//!   then an `and` keeps the low b bits.
//! * look up: one `tbl` per plane (b ≤ 4: one-register tables; b = 5:
//!   two; b = 6: four) gives the low and the high bytes of 16 f16;
//!   `zip1`/`zip2` interleave them into two registers of 8 f16, and
//!   `fcvtl`/`fcvtl2` widen those into four registers of 4 f32 (exactly, as
//!   the scalar kernels' `f16::to_f32`).
//! * b = 8: 256 entries would take 16 registers per plane; instead the
//!   codebook is widened once into 256 f32 (1 KB, in L1) and each weight is
//!   loaded into its lane (`ld1 {v.s}[l]`), 16 loads per 16 weights.
//! * `fmla` into one of eight accumulators (GEMV), or store (decode).
//!
//! The GEMV sums element i of a segment into lane i mod 32 of the eight
//! accumulators and reduces them by halving at the end of the row, which
//! is what `scalar::gemv_rows::<32>` does: the two agree bit for bit.
//! Tails go through zero-padded copies of the index bytes and of x, and
//! the accumulator lanes past the end are kept with a bit select.

use std::arch::aarch64::*;

use half::f16;

use super::gemm::Gemm;
use super::layout::{direct_groups, epilogue, tail_bytes, CbMatrix, Segment};

/// Lanes per register.
const L: usize = 4;
/// Accumulator registers in the GEMV (two lookups of 16 weights per step).
const U: usize = 8;
/// Partial sums of the GEMV: its scalar twin is `scalar::gemv_rows::<GEMV_LANES>`.
pub(crate) const GEMV_LANES: usize = U * L;

/// 16 weights, 4 per register, in order.
type Weights16 = [float32x4_t; 4];

/// One block's codebook, ready to turn 16 packed indices into 16 weights.
trait Lut {
    /// Index width b: 16 indices take 2b bytes.
    const BITS: usize;
    /// Bytes `get` reads from its pointer (≥ 2b).
    const READ: usize;
    /// Loads `codebook` (2^b f16).
    unsafe fn new(codebook: &[f16]) -> Self;
    /// The weights of the 16 indices packed at `p`.
    unsafe fn get(&self, p: *const u8) -> Weights16;
}

/// The 16 b-bit indices packed at `p`, one per byte (b = 2, 3, 4, 5, 6).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn unpack<const B: usize>(p: *const u8) -> uint8x16_t {
    let mask = vdupq_n_u8(((1u16 << B) - 1) as u8);
    match B {
        2 => {
            // byte ⌊t/4⌋ into byte t, shifted right by 2·(t mod 4)
            const SPREAD: [u8; 16] = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3];
            const SHIFTS: [i8; 16] = [0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6];
            let word = vreinterpretq_u8_u32(vdupq_n_u32((p as *const u32).read_unaligned()));
            let spread = vqtbl1q_u8(word, vld1q_u8(SPREAD.as_ptr()));
            vandq_u8(vshlq_u8(spread, vld1q_s8(SHIFTS.as_ptr())), mask)
        }
        4 => {
            // [lo0 hi0 lo1 hi1 … lo7 hi7] of the 8 bytes
            let bytes = vcombine_u8(vld1_u8(p), vdup_n_u8(0));
            vzip1q_u8(vandq_u8(bytes, mask), vshrq_n_u8::<4>(bytes))
        }
        _ => {
            let (spread, shifts): (&'static [u8; 32], &'static [i16; 16]) =
                (&Windows::<B>::SPREAD, &Windows::<B>::SHIFTS);
            let bytes = vld1q_u8(p);
            let lo = vqtbl1q_u8(bytes, vld1q_u8(spread.as_ptr())); // indices 0-7 in u16 lanes
            let hi = vqtbl1q_u8(bytes, vld1q_u8(spread.as_ptr().add(16))); // 8-15
            let lo = vshlq_u16(vreinterpretq_u16_u8(lo), vld1q_s16(shifts.as_ptr()));
            let hi = vshlq_u16(vreinterpretq_u16_u8(hi), vld1q_s16(shifts.as_ptr().add(8)));
            let low_bytes = vuzp1q_u8(vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi));
            vandq_u8(low_bytes, mask)
        }
    }
}

/// The `tbl` and `ushl` controls that unpack 16 indices of b = 3, 5, 6
/// bits (2b ≤ 12 bytes, read as 16).
struct Windows<const B: usize>;

impl<const B: usize> Windows<B> {
    /// Bytes ⌊t·b/8⌋ and ⌊t·b/8⌋+1 into u16 lane t of two registers
    /// (t < 8, then t ≥ 8).
    const SPREAD: [u8; 32] = {
        let mut spread = [0u8; 32];
        let mut t = 0;
        while t < 16 {
            spread[2 * t] = (t * B / 8) as u8;
            spread[2 * t + 1] = (t * B / 8) as u8 + 1;
            t += 1;
        }
        spread
    };
    /// −(t·b mod 8): `ushl` by a negative amount shifts right.
    const SHIFTS: [i16; 16] = {
        let mut shifts = [0i16; 16];
        let mut t = 0;
        while t < 16 {
            shifts[t] = -((t * B % 8) as i16);
            t += 1;
        }
        shifts
    };
}

/// 16 f16, given as their low and high bytes, widened to f32.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn widen_planes(lo: uint8x16_t, hi: uint8x16_t) -> Weights16 {
    let h0 = vreinterpretq_f16_u8(vzip1q_u8(lo, hi)); // weights 0-7 as f16
    let h1 = vreinterpretq_f16_u8(vzip2q_u8(lo, hi)); // weights 8-15
    [
        vcvt_f32_f16(vget_low_f16(h0)),
        vcvt_high_f32_f16(h0),
        vcvt_f32_f16(vget_low_f16(h1)),
        vcvt_high_f32_f16(h1),
    ]
}

/// b = 2, 3, 4: each plane (4, 8, 16 bytes) in one register.
struct SmallLut<const B: usize> {
    lo: uint8x16_t,
    hi: uint8x16_t,
}

impl<const B: usize> Lut for SmallLut<B> {
    const BITS: usize = B;
    const READ: usize = match B {
        2 => 4,
        4 => 8,
        _ => 16,
    };
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let mut entries = [f16::ZERO; 16];
        entries[..1 << B].copy_from_slice(&codebook[..1 << B]);
        let planes = vld2q_u8(entries.as_ptr() as *const u8); // (low bytes, high bytes)
        SmallLut {
            lo: planes.0,
            hi: planes.1,
        }
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn get(&self, p: *const u8) -> Weights16 {
        let idx = unpack::<B>(p);
        widen_planes(vqtbl1q_u8(self.lo, idx), vqtbl1q_u8(self.hi, idx))
    }
}

/// b = 5: each plane (32 bytes) in two registers.
struct Lut5 {
    lo: uint8x16x2_t,
    hi: uint8x16x2_t,
}

impl Lut for Lut5 {
    const BITS: usize = 5;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr() as *const u8;
        let (a, b) = (vld2q_u8(c), vld2q_u8(c.add(32))); // entries 0-15, 16-31
        Lut5 {
            lo: uint8x16x2_t(a.0, b.0),
            hi: uint8x16x2_t(a.1, b.1),
        }
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn get(&self, p: *const u8) -> Weights16 {
        let idx = unpack::<5>(p);
        widen_planes(vqtbl2q_u8(self.lo, idx), vqtbl2q_u8(self.hi, idx))
    }
}

/// b = 6: each plane (64 bytes) in four registers.
struct Lut6 {
    lo: uint8x16x4_t,
    hi: uint8x16x4_t,
}

impl Lut for Lut6 {
    const BITS: usize = 6;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let c = codebook.as_ptr() as *const u8;
        let q: [uint8x16x2_t; 4] = [
            vld2q_u8(c), // entries 0-15
            vld2q_u8(c.add(32)),
            vld2q_u8(c.add(64)),
            vld2q_u8(c.add(96)),
        ];
        Lut6 {
            lo: uint8x16x4_t(q[0].0, q[1].0, q[2].0, q[3].0),
            hi: uint8x16x4_t(q[0].1, q[1].1, q[2].1, q[3].1),
        }
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn get(&self, p: *const u8) -> Weights16 {
        let idx = unpack::<6>(p);
        widen_planes(vqtbl4q_u8(self.lo, idx), vqtbl4q_u8(self.hi, idx))
    }
}

/// b = 8: 256 f32 in L1, loaded lane by lane.
struct Lut8 {
    table: [f32; 256],
}

/// table[p[0..4]] as one register.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn gather4(table: *const f32, p: *const u8) -> float32x4_t {
    let v = vld1q_dup_f32(table.add(*p as usize));
    let v = vld1q_lane_f32::<1>(table.add(*p.add(1) as usize), v);
    let v = vld1q_lane_f32::<2>(table.add(*p.add(2) as usize), v);
    vld1q_lane_f32::<3>(table.add(*p.add(3) as usize), v)
}

impl Lut for Lut8 {
    const BITS: usize = 8;
    const READ: usize = 16;
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn new(codebook: &[f16]) -> Self {
        let mut table = [0.0f32; 256];
        let (c, t) = (codebook.as_ptr() as *const u8, table.as_mut_ptr());
        for i in (0..256).step_by(8) {
            let h = vreinterpretq_f16_u8(vld1q_u8(c.add(2 * i))); // entries i .. i+8
            vst1q_f32(t.add(i), vcvt_f32_f16(vget_low_f16(h)));
            vst1q_f32(t.add(i + 4), vcvt_high_f32_f16(h));
        }
        Lut8 { table }
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn get(&self, p: *const u8) -> Weights16 {
        let t = self.table.as_ptr();
        [
            gather4(t, p),
            gather4(t, p.add(4)),
            gather4(t, p.add(8)),
            gather4(t, p.add(12)),
        ]
    }
}

/// Lanes below `n` set (all four for n ≥ 4).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn lanes_below(n: usize) -> uint32x4_t {
    const LANE: [u32; 4] = [0, 1, 2, 3];
    vcltq_u32(vld1q_u32(LANE.as_ptr()), vdupq_n_u32(n.min(4) as u32))
}

/// acc[i/4 mod 8][i mod 4] += Ŵ_i · x[i] over one segment.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot<T: Lut>(seg: &Segment, x: &[f32], acc: &mut [float32x4_t; U]) {
    let lut = T::new(seg.codebook);
    let b = T::BITS; // bytes per 8 weights
    let (p, x) = (seg.indices.as_ptr(), &x[..seg.len]);
    // Group g (32 weights, 4b bytes) is read by two `get`s, the second at 2b.
    let groups = direct_groups(seg.indices, 4 * b, 2 * b + T::READ);
    let direct = (seg.len / GEMV_LANES).min(groups);
    let mut a = *acc;
    for g in 0..direct {
        // 32 weights: index bytes [4·b·g, 4·b·(g+1)), x[32·g .. 32·(g+1)]
        let (p, xg) = (p.add(4 * b * g), x.as_ptr().add(GEMV_LANES * g));
        let w = lut.get(p);
        let v = lut.get(p.add(2 * b));
        for j in 0..4 {
            a[j] = vfmaq_f32(a[j], w[j], vld1q_f32(xg.add(4 * j)));
            a[4 + j] = vfmaq_f32(a[4 + j], v[j], vld1q_f32(xg.add(16 + 4 * j)));
        }
    }
    // The rest, 32 weights at a time, through zero-padded copies of the
    // index bytes and of x; lanes past the end keep their sums.
    for from in (direct * GEMV_LANES..seg.len).step_by(GEMV_LANES) {
        let n = (seg.len - from).min(GEMV_LANES);
        let bytes = tail_bytes::<48>(seg.indices, from, n, b);
        let mut xs = [0.0f32; GEMV_LANES];
        xs[..n].copy_from_slice(&x[from..from + n]);
        let w = lut.get(bytes.as_ptr());
        let v = lut.get(bytes.as_ptr().add(2 * b));
        let weights: [float32x4_t; U] = [w[0], w[1], w[2], w[3], v[0], v[1], v[2], v[3]];
        for (j, (a, w)) in a.iter_mut().zip(weights).enumerate().take(n.div_ceil(L)) {
            let sum = vfmaq_f32(*a, w, vld1q_f32(xs.as_ptr().add(L * j)));
            *a = vbslq_f32(lanes_below(n - L * j), sum, *a);
        }
    }
    *acc = a;
}

/// The 32 partial sums reduced by halving (as `reduce_halving::<32>`):
/// registers j += j+4, j += j+2, 0 += 1, then each register's halves,
/// then its two lanes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn reduce(a: [float32x4_t; U]) -> f32 {
    let s = [
        vaddq_f32(a[0], a[4]),
        vaddq_f32(a[1], a[5]),
        vaddq_f32(a[2], a[6]),
        vaddq_f32(a[3], a[7]),
    ]; // l + l+16
    let s = [vaddq_f32(s[0], s[2]), vaddq_f32(s[1], s[3])]; // l + l+8
    let s = vaddq_f32(s[0], s[1]); // l + l+4
    let h = vadd_f32(vget_low_f32(s), vget_high_f32(s)); // l + l+2
    vpadds_f32(h) // 0 + 1
}

#[target_feature(enable = "neon")]
unsafe fn gemv_rows_with<T: Lut>(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    for (i, out) in y.iter_mut().enumerate() {
        let mut acc = [vdupq_n_f32(0.0); U];
        for seg in m.segments(r0 + i, 0, m.k()) {
            dot::<T>(&seg, &x[seg.k0..], &mut acc);
        }
        *out = epilogue(reduce(acc), *out, alpha, beta);
    }
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x for the rows of `y`.
///
/// # Safety
/// The CPU has NEON; `x` has K entries.
pub(crate) unsafe fn gemv_rows(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    match m.bits() {
        2 => gemv_rows_with::<SmallLut<2>>(m, x, y, r0, alpha, beta),
        3 => gemv_rows_with::<SmallLut<3>>(m, x, y, r0, alpha, beta),
        4 => gemv_rows_with::<SmallLut<4>>(m, x, y, r0, alpha, beta),
        5 => gemv_rows_with::<Lut5>(m, x, y, r0, alpha, beta),
        6 => gemv_rows_with::<Lut6>(m, x, y, r0, alpha, beta),
        _ => gemv_rows_with::<Lut8>(m, x, y, r0, alpha, beta),
    }
}

/// out := the segment's weights (out.len() = seg.len).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn decode<T: Lut>(seg: &Segment, out: &mut [f32]) {
    let lut = T::new(seg.codebook);
    let b = T::BITS;
    let (p, o) = (seg.indices.as_ptr(), out.as_mut_ptr());
    let direct = (seg.len / 16).min(direct_groups(seg.indices, 2 * b, T::READ));
    for v in 0..direct {
        // 16 weights: index bytes [2·b·v, 2·b·(v+1)), out[16·v .. 16·(v+1)]
        let w = lut.get(p.add(2 * b * v));
        for (j, w) in w.into_iter().enumerate() {
            vst1q_f32(o.add(16 * v + L * j), w);
        }
    }
    for from in (direct * 16..seg.len).step_by(16) {
        let n = (seg.len - from).min(16);
        let bytes = tail_bytes::<32>(seg.indices, from, n, b);
        let mut weights = [0.0f32; 16];
        for (j, w) in lut.get(bytes.as_ptr()).into_iter().enumerate() {
            vst1q_f32(weights.as_mut_ptr().add(L * j), w);
        }
        out[from..from + n].copy_from_slice(&weights[..n]);
    }
}

#[target_feature(enable = "neon")]
unsafe fn decode_range_with<T: Lut>(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    for seg in m.segments(row, k0, k0 + out.len()) {
        let at = seg.k0 - k0;
        decode::<T>(&seg, &mut out[at..at + seg.len]);
    }
}

/// out := Ŵ[row, k0 .. k0 + out.len()].
///
/// # Safety
/// The CPU has NEON.
pub(crate) unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    match m.bits() {
        2 => decode_range_with::<SmallLut<2>>(m, row, k0, out),
        3 => decode_range_with::<SmallLut<3>>(m, row, k0, out),
        4 => decode_range_with::<SmallLut<4>>(m, row, k0, out),
        5 => decode_range_with::<Lut5>(m, row, k0, out),
        6 => decode_range_with::<Lut6>(m, row, k0, out),
        _ => decode_range_with::<Lut8>(m, row, k0, out),
    }
}

/// The GEMM register tile: 6 rows of X × 16 columns (4 registers) of the
/// panel, 24 accumulators. Per k: four panel loads, six scalar loads of X,
/// twenty-four FMAs by element.
pub(crate) struct NeonGemm;

const MR: usize = 6;

#[target_feature(enable = "neon")]
unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
    let xs: [*const f32; MR] = std::array::from_fn(|r| xs[r]);
    let mut c = [[vdupq_n_f32(0.0); 4]; MR]; // S[r][4·j .. 4·j+4]
    for (r, c) in c.iter_mut().enumerate() {
        for (j, c) in c.iter_mut().enumerate() {
            *c = vld1q_f32(s.add(16 * r + L * j));
        }
    }
    for k in 0..kc {
        let p = panel.add(16 * k); // panel[k][0..16]
        let p = [
            vld1q_f32(p),
            vld1q_f32(p.add(4)),
            vld1q_f32(p.add(8)),
            vld1q_f32(p.add(12)),
        ];
        for r in 0..MR {
            let x = *xs[r].add(k);
            for j in 0..4 {
                c[r][j] = vfmaq_n_f32(c[r][j], p[j], x);
            }
        }
    }
    for (r, c) in c.iter().enumerate() {
        for (j, c) in c.iter().enumerate() {
            vst1q_f32(s.add(16 * r + L * j), *c);
        }
    }
}

impl Gemm for NeonGemm {
    const MR: usize = MR;
    const NR: usize = 16;

    unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
        decode_range(m, row, k0, out)
    }

    unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
        tile(kc, xs, panel, s)
    }
}
