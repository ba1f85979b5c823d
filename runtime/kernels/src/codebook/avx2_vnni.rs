//! The int8-activation GEMV (`int8.rs`) for x86-64 AVX2 with AVX-VNNI, for
//! b = 4 (16-entry codebooks, which `vpshufb` looks up in one instruction):
//! the path of CPUs with AVX-VNNI but without AVX-512 VBMI (Alder Lake and
//! later client cores, Zen 5 client parts with AVX-512 disabled).
//!
//! Per segment the 16 centroids are widened (`vcvtph2ps`), their max|c|
//! taken, scaled by 127/max and rounded to nearest even (the scalar twin's
//! f32 operations) into a `vpshufb` table of `qc + 128` in both 128-bit
//! lanes. Then per 64 weights (32 index bytes):
//!
//! * the low and the high nibbles (`vpand`, `vpsrlw` + `vpand`) are looked
//!   up (`vpshufb`), interleaved (`vpunpcklbw`/`vpunpckhbw`, within 128-bit
//!   lanes) and put back in order (`vperm2i128`): weights 0-31 and 32-63 in
//!   two registers;
//! * `vpdpbusd` (VEX) sums u8 weight × i8 activation over 4 bytes into the
//!   8 dword lanes of each, from the group's lane biases: lanes 0-7 and
//!   8-15 of the AVX-512 kernel, with the same exact integers;
//! * `vcvtdq2ps` and `vfmadd231ps` by `s_x[g]` into one of two accumulator
//!   pairs (even, odd groups of the segment).
//!
//! Per segment and per row the f32 operations are the AVX-512 kernel's,
//! lane for lane, so both match `scalar::gemv_rows_int8` bit for bit.

use std::arch::x86_64::*;

use half::f16;

use super::int8::{int8_codebook_scale, Q8Vector, GROUP};
use super::layout::{epilogue, tail_bytes, CbMatrix};

/// Index bytes per group of 64 weights.
const V: usize = 32;

/// The segment's 16 centroids as a `vpshufb` table of `qc + 128` (in both
/// lanes) and `s_c`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn table(codebook: &[f16]) -> (__m256i, f32) {
    let c = codebook.as_ptr() as *const __m128i;
    let f = [
        _mm256_cvtph_ps(_mm_loadu_si128(c)),
        _mm256_cvtph_ps(_mm_loadu_si128(c.add(1))),
    ];
    let sign = _mm256_set1_ps(-0.0);
    let m = _mm256_max_ps(_mm256_andnot_ps(sign, f[0]), _mm256_andnot_ps(sign, f[1]));
    let h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    let h = _mm_max_ss(h, _mm_shuffle_ps::<1>(h, h));
    let (scale, inv) = int8_codebook_scale(_mm_cvtss_f32(h));
    let inv = _mm256_set1_ps(inv);
    let mut q = [0i32; 16];
    for (r, f) in f.iter().enumerate() {
        let v = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(*f, inv),
        );
        _mm256_storeu_si256(
            q.as_mut_ptr().add(8 * r) as *mut __m256i,
            _mm256_cvttps_epi32(v),
        );
    }
    let bytes: [u8; 16] = std::array::from_fn(|i| (q[i] as u8) ^ 0x80);
    let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(bytes.as_ptr() as *const __m128i));
    (table, scale)
}

/// acc += s_x[g] · (the lane sums of Σ qc·xq) for the 64 indices at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn step(
    p: *const u8,
    table: __m256i,
    xq: &Q8Vector,
    g: usize,
    acc: (__m256, __m256),
) -> (__m256, __m256) {
    let v = _mm256_loadu_si256(p as *const __m256i);
    let low = _mm256_set1_epi8(0x0f);
    let lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low));
    let hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16::<4>(v), low));
    // Lane 0: weights 0-15 | 16-31; lane 1: 32-47 | 48-63.
    let (a, b) = (_mm256_unpacklo_epi8(lo, hi), _mm256_unpackhi_epi8(lo, hi));
    let w0 = _mm256_permute2x128_si256::<0x20>(a, b);
    let w1 = _mm256_permute2x128_si256::<0x31>(a, b);
    let group = xq.groups().get_unchecked(g);
    let (bias, q) = (
        group.bias.as_ptr() as *const __m256i,
        group.q.as_ptr() as *const __m256i,
    );
    let s0 = _mm256_dpbusd_avx_epi32(_mm256_load_si256(bias), w0, _mm256_load_si256(q));
    let s1 = _mm256_dpbusd_avx_epi32(
        _mm256_load_si256(bias.add(1)),
        w1,
        _mm256_load_si256(q.add(1)),
    );
    let sx = _mm256_set1_ps(*xq.scales().get_unchecked(g));
    (
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), sx, acc.0),
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), sx, acc.1),
    )
}

/// The 16 partial sums (lanes 0-7, 8-15) reduced by halving (as
/// `reduce_halving::<16>`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn reduce((lo, hi): (__m256, __m256)) -> f32 {
    let s = _mm256_add_ps(lo, hi); // l + l+8
    let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s)); // l + l+4
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h)); // l + l+2
    let h = _mm_add_ss(h, _mm_shuffle_ps::<1>(h, h)); // 0 + 1
    _mm_cvtss_f32(h)
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x̂ for the rows of `y`.
///
/// # Safety
/// The CPU has AVX2, FMA, F16C and AVX-VNNI; `xq` has K entries; b = 4 and
/// `int8_fits(m)`.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(crate) unsafe fn gemv_rows(
    m: &CbMatrix,
    xq: &Q8Vector,
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    debug_assert_eq!(m.bits(), 4);
    let zero = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (i, out) in y.iter_mut().enumerate() {
        let mut row = zero;
        for seg in m.segments(r0 + i, 0, m.k()) {
            let (table, scale) = table(seg.codebook);
            let g0 = seg.k0 / GROUP;
            let (mut a0, mut a1) = (zero, zero);
            for j in 0..seg.len.div_ceil(GROUP) {
                // a0 is always this group's accumulator (only a0 + a1,
                // which commutes, is used).
                a0 = if V * (j + 1) <= seg.indices.len() {
                    step(seg.indices.as_ptr().add(V * j), table, xq, g0 + j, a0)
                } else {
                    let n = (seg.len - GROUP * j).min(GROUP);
                    let buf = tail_bytes::<64>(seg.indices, GROUP * j, n, 4);
                    step(buf.as_ptr(), table, xq, g0 + j, a0)
                };
                (a0, a1) = (a1, a0);
            }
            let sc = _mm256_set1_ps(scale);
            row = (
                _mm256_fmadd_ps(_mm256_add_ps(a0.0, a1.0), sc, row.0),
                _mm256_fmadd_ps(_mm256_add_ps(a0.1, a1.1), sc, row.1),
            );
        }
        *out = epilogue(reduce(row), *out, alpha, beta);
    }
}
