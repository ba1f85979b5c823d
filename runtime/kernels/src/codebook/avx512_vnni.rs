//! The int8-activation GEMV (`int8.rs`) for x86-64 AVX-512 with VBMI and
//! VNNI: 64 weights per step, against one group of quantized activations.
//!
//! The codebooks become int8 tables 32 blocks at a time (`convert`), in
//! three passes: widen the 2^b f16 centroids (`vcvtph2ps`) and take
//! max|c| per block; `s_c = max/127` and `127/max` for 16 blocks per
//! division; scale, round (`vcvtps2dq`, to nearest even), narrow to bytes
//! (`vpmovdb`), offset by 128 (u8) and store the table 64/2^b times over in
//! 64 bytes: `vpermb` reads only bits 0-5 of an index, so for b < 6 the
//! bits above the index (the next index's, see below) do not matter. Done
//! per segment, the conversion was a ~40-cycle chain in front of every
//! segment's lookups and cost more than the lookups themselves at b = 3, 4;
//! as a burst it is independent work, and the next chunk's centroids are
//! prefetched meanwhile. Then per 64 weights (8b bytes of indices):
//!
//! * `vpermb` spreads the bytes so that qword j holds bytes j·b .. j·b+7 of
//!   the group's indices: the b bytes of indices 8j..8j+7 at its bottom;
//! * `vpmultishiftqb` moves bits t·b .. t·b+7 of qword j into its byte t:
//!   index 8j+t in the low b bits of byte 8j+t;
//! * `vpermb` looks the 64 weights up (u8 = qc + 128);
//! * `vpdpbusd` sums u8 weight × i8 activation over 4 bytes into 16 dword
//!   lanes, starting from the group's lane biases (−128·Σ xq), which makes
//!   each lane the exact `Σ qc·xq` of its 4 weights;
//! * `vcvtdq2ps` and `vfmadd231ps` by the broadcast `s_x[g]` into one of two
//!   accumulators (even, odd groups of the segment).
//!
//! At the end of a segment the two accumulators are added and multiplied
//! by `s_c` into the row's accumulator, whose 16 lanes are reduced by
//! halving at the end of the row: as `scalar::gemv_rows_int8`, bit for bit.
//! 8 instructions per 64 weights where the f32 kernel spends ~24.
//!
//! The GEMM (`gemm_with`, prefill) puts rows of Ŵ in the lanes instead:
//! per 32 rows (`GEMM_COLS`), each group of 64 weights is unpacked and
//! looked up as above (u8 = `qc + 128`), once per call, and 16 rows'
//! groups are transposed (`transpose16`) so that dword lane l of register
//! s holds weights 4s .. 4s + 3 of row l (`pack`). A tile of 6 rows of X
//! (`GEMM_ROWS`) then runs, per group, 16 steps of 2 × 6 `vpdpbusd`: the
//! two registers of weights against 4 activations of each row broadcast
//! (i8), from the row's start `−128·Σ xq`, which leaves the exact
//! `D = Σ qc·xq` of each (row of X, row of Ŵ) pair in a lane; then one
//! conversion, one product `s_c·s_x` and one FMA per register: 3 f32
//! operations per 16 `vpdpbusd`, where the GEMV's order needs 2 per one.
//! The scalar twin (`scalar::gemm_block_int8`) does these f32 operations
//! in this order, bit for bit.
//!
//! Index bytes are read in place while the stream holds the bytes a load
//! touches (16 for b = 2, 32 for b = 3, 4, 64 for b = 5, 6); the last
//! groups of the stream go through a zero-padded copy. A row's last group
//! may be partial (K not a multiple of 64): the indices past the row's end
//! (the next row's, or the padding) meet activations that are zero.

use std::arch::x86_64::*;

use half::f16;

use super::int8::{
    quantize_group, Int8Codebooks, Q8Group, Q8Row, Q8Vector, GEMM_COLS, GEMM_ROWS, GROUP,
};
use super::layout::{epilogue, tail_bytes, CbMatrix};

/// `vpermb` control: qword j gets bytes j·b .. j·b+7.
const fn spread(bits: usize) -> [u8; 64] {
    let mut c = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        c[i] = ((i / 8) * bits + i % 8) as u8;
        i += 1;
    }
    c
}

/// `vpmultishiftqb` control: byte t of every qword from bit t·b.
const fn fields(bits: usize) -> [u8; 64] {
    let mut c = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        c[i] = ((i % 8) * bits) as u8;
        i += 1;
    }
    c
}

pub(super) struct Controls<const B: usize>;

impl<const B: usize> Controls<B> {
    pub(super) const SPREAD: [u8; 64] = spread(B);
    pub(super) const FIELDS: [u8; 64] = fields(B);
    /// Bytes one group's load reads (≥ 8b).
    pub(super) const READ: usize = match B {
        2 => 16,
        3 | 4 => 32,
        _ => 64,
    };
}

/// The 8b index bytes at `p` in the low bytes of a register (the load reads
/// `Controls::<B>::READ` bytes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
pub(super) unsafe fn load<const B: usize>(p: *const u8) -> __m512i {
    match B {
        2 => _mm512_zextsi128_si512(_mm_loadu_si128(p as *const __m128i)),
        3 | 4 => _mm512_zextsi256_si512(_mm256_loadu_si256(p as *const __m256i)),
        _ => _mm512_loadu_si512(p as *const _),
    }
}

/// Blocks whose tables are converted at a time.
const CHUNK: usize = 32;

/// The int8 tables of blocks `first .. first + count`: block `first + t`'s
/// `qc + 128` repeated to 64 bytes in `bytes[t]` (a `vpermb` table as it
/// is, loaded once per segment), its `s_c` in `scales[t]`.
#[repr(C, align(64))]
struct Tables {
    bytes: [[u8; 64]; CHUNK],
    amax: [f32; CHUNK],
    inv: [f32; CHUNK],
    scales: [f32; CHUNK],
    first: usize,
    count: usize,
}

impl Tables {
    /// No blocks converted yet.
    fn empty() -> Self {
        Tables {
            bytes: [[0; 64]; CHUNK],
            amax: [0.0; CHUNK],
            inv: [0.0; CHUNK],
            scales: [0.0; CHUNK],
            first: 0,
            count: 0,
        }
    }
}

/// Block `j`'s 2^b centroids widened to f32 in the first 2^b / 16
/// registers (fewer entries zero-extended).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn centroids<const B: usize>(codebooks: *const f16, j: usize) -> [__m512; 4] {
    let levels = 1usize << B;
    let c = codebooks.add(j << B) as *const i16;
    let mut f = [_mm512_setzero_ps(); 4];
    for (r, f) in f.iter_mut().enumerate().take(levels.div_ceil(16)) {
        let words = (levels - 16 * r).min(16);
        let mask = ((1u32 << words) - 1) as __mmask16;
        *f = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, c.add(16 * r)));
    }
    f
}

/// Converts the tables of blocks `first .. first + count` (count ≤ CHUNK)
/// into `t`, in three passes so that the conversion is a burst of
/// independent work rather than a chain per segment: max|c| per block, then
/// `s_c = max/127` and `127/max` (`int8_codebook_scale`) for 16 blocks per
/// division, then the rounding. Cold and not inlined, as the tail below:
/// a call in the row loop otherwise makes the compiler keep the row's
/// accumulator in memory, a store-to-load chain of ~11 cycles per segment.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn convert<const B: usize>(codebooks: &[f16], first: usize, count: usize, t: &mut Tables) {
    let regs = (1usize << B).div_ceil(16);
    // The next chunk's centroids, from memory while this one's are used (a
    // burst the hardware prefetcher does not foresee: without this, every
    // chunk waits for memory).
    let ahead = codebooks.len().min((first + count + CHUNK) << B);
    for at in (((first + count) << B)..ahead).step_by(32) {
        _mm_prefetch::<_MM_HINT_T0>(codebooks.as_ptr().add(at) as *const i8);
    }
    let codebooks = codebooks.as_ptr();
    for b in 0..count {
        let f = centroids::<B>(codebooks, first + b);
        let mut m = _mm512_abs_ps(f[0]);
        for f in f.iter().take(regs).skip(1) {
            m = _mm512_max_ps(m, _mm512_abs_ps(*f));
        }
        t.amax[b] = _mm512_reduce_max_ps(m);
    }
    t.amax[count..].fill(0.0);
    for v in 0..CHUNK / 16 {
        let amax = _mm512_load_ps(t.amax.as_ptr().add(16 * v));
        let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(amax, _mm512_setzero_ps());
        let scale = _mm512_div_ps(amax, _mm512_set1_ps(127.0));
        let inv = _mm512_maskz_div_ps(positive, _mm512_set1_ps(127.0), amax);
        _mm512_store_ps(t.scales.as_mut_ptr().add(16 * v), scale);
        _mm512_store_ps(t.inv.as_mut_ptr().add(16 * v), inv);
    }
    for b in 0..count {
        let f = centroids::<B>(codebooks, first + b);
        let inv = _mm512_set1_ps(t.inv[b]);
        let bytes: [__m128i; 4] = std::array::from_fn(|r| {
            if r < regs {
                let q = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(f[r], inv),
                );
                _mm512_cvtepi32_epi8(q)
            } else {
                _mm_setzero_si128()
            }
        });
        let table = match B {
            2 => _mm512_broadcastd_epi32(bytes[0]),
            3 => _mm512_broadcastq_epi64(bytes[0]),
            4 => _mm512_broadcast_i32x4(bytes[0]),
            5 => _mm512_broadcast_i64x4(_mm256_set_m128i(bytes[1], bytes[0])),
            _ => _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set_m128i(bytes[1], bytes[0])),
                _mm256_set_m128i(bytes[3], bytes[2]),
            ),
        };
        let table = _mm512_xor_si512(table, _mm512_set1_epi8(-128));
        _mm512_store_si512(t.bytes[b].as_mut_ptr() as *mut _, table);
    }
    (t.first, t.count) = (first, count);
}

/// Every block's table of `codebooks` (b bits): 2^b bytes `qc + 128` per
/// block into `tables`, `s_c` into `scales` (`Int8Codebooks`), by
/// `convert` itself, 32 blocks at a time.
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL, VBMI and VNNI; `tables` holds 2^b bytes
/// and `scales` one value for each block of `codebooks`.
pub(crate) unsafe fn convert_all(
    codebooks: &[f16],
    bits: usize,
    tables: &mut [u8],
    scales: &mut [f32],
) {
    match bits {
        2 => convert_all_with::<2>(codebooks, tables, scales),
        3 => convert_all_with::<3>(codebooks, tables, scales),
        4 => convert_all_with::<4>(codebooks, tables, scales),
        5 => convert_all_with::<5>(codebooks, tables, scales),
        6 => convert_all_with::<6>(codebooks, tables, scales),
        b => unreachable!("no int8 kernel for b = {b}"),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn convert_all_with<const B: usize>(
    codebooks: &[f16],
    tables: &mut [u8],
    scales: &mut [f32],
) {
    let levels = 1usize << B;
    let blocks = codebooks.len() >> B;
    let mut t = Tables::empty();
    for first in (0..blocks).step_by(CHUNK) {
        let count = CHUNK.min(blocks - first);
        convert::<B>(codebooks, first, count, &mut t);
        for b in 0..count {
            let j = first + b;
            tables[j * levels..(j + 1) * levels].copy_from_slice(&t.bytes[b][..levels]);
            scales[j] = t.scales[b];
        }
    }
}

/// acc[v] += s_x[g] · (the 16 lanes of Σ qc·x̂_v) for the 64 indices at
/// `p`, looked up once for the V vectors.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn step<const B: usize, const V: usize>(
    p: *const u8,
    (spread, fields, table): (__m512i, __m512i, __m512i),
    xq: &[&Q8Vector; V],
    g: usize,
    acc: &mut [__m512; V],
) {
    let w = lookup::<B>(p, (spread, fields, table));
    for (xq, acc) in xq.iter().zip(acc.iter_mut()) {
        let group = xq.groups().get_unchecked(g);
        let s = _mm512_dpbusd_epi32(
            _mm512_load_si512(group.bias.as_ptr() as *const _),
            w,
            _mm512_load_si512(group.q.as_ptr() as *const _),
        );
        let sx = _mm512_set1_ps(*xq.scales().get_unchecked(g));
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sx, *acc);
    }
}

/// `step` on the `n` weights from `from` at the end of the index stream,
/// through a zero-padded copy of their bytes.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn tail_step<const B: usize, const V: usize>(
    stream: &[u8],
    (from, n): (usize, usize),
    ctl: (__m512i, __m512i, __m512i),
    xq: &[&Q8Vector; V],
    g: usize,
    acc: &mut [__m512; V],
) {
    let buf = tail_bytes::<64>(stream, from, n, B);
    step::<B, V>(buf.as_ptr(), ctl, xq, g, acc)
}

/// The 16 partial sums reduced by halving (as `reduce_halving::<16>`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn reduce(s: __m512) -> f32 {
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
    let s = _mm256_add_ps(_mm512_castps512_ps256(s), hi); // l + l+8
    let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s)); // l + l+4
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h)); // l + l+2
    let h = _mm_add_ss(h, _mm_shuffle_ps::<1>(h, h)); // 0 + 1
    _mm_cvtss_f32(h)
}

/// Block j's table (`qc + 128` repeated to 64 bytes, as `convert` stores
/// it) from its 2^b converted bytes at `p`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn broadcast<const B: usize>(p: *const u8) -> __m512i {
    match B {
        2 => _mm512_set1_epi32((p as *const i32).read_unaligned()),
        3 => _mm512_set1_epi64((p as *const i64).read_unaligned()),
        4 => _mm512_broadcast_i32x4(_mm_loadu_si128(p as *const __m128i)),
        5 => _mm512_broadcast_i64x4(_mm256_loadu_si256(p as *const __m256i)),
        _ => _mm512_loadu_si512(p as *const _),
    }
}

/// `ys[v][i] := beta·ys[v][i] + alpha·Ŵ[r0 + i, :]·x̂_v` for i < n and the
/// V vectors: every group of weights is looked up once and multiplied with
/// each vector by the operations of the 1-vector GEMV, in its order, so
/// that each output is the 1-vector GEMV's, bit for bit.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn gemv_rows_with<const B: usize, const V: usize>(
    m: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    (xq, ys): ([&Q8Vector; V], [*mut f32; V]),
    (r0, n): (usize, usize),
    alpha: f32,
    beta: f32,
) {
    let spread = _mm512_loadu_si512(Controls::<B>::SPREAD.as_ptr() as *const _);
    let fields = _mm512_loadu_si512(Controls::<B>::FIELDS.as_ptr() as *const _);
    let read = Controls::<B>::READ;
    let (k, block, v) = (m.k(), m.block(), 8 * B); // v: index bytes per group
    let (stream, codebooks) = (m.indices(), m.codebooks());
    let blocks = m.codebooks().len() >> B;
    let mut t = Tables::empty();
    for i in 0..n {
        let flat0 = (r0 + i) * k; // the row's first weight
        let byte0 = flat0 * B / 8; // and its first index byte
        let mut row = [_mm512_setzero_ps(); V];
        let (mut c, mut j) = (0, flat0 / block); // segment start column, block
        while c < k {
            let (table, scale) = match converted {
                Some(c) => {
                    let (bytes, scale) = c.block(j);
                    (broadcast::<B>(bytes.as_ptr()), scale)
                }
                None => {
                    // Blocks only grow from segment to segment, row to row.
                    if j >= t.first + t.count {
                        convert::<B>(codebooks, j, CHUNK.min(blocks - j), &mut t);
                    }
                    let at = j - t.first;
                    (
                        _mm512_load_si512(t.bytes.get_unchecked(at).as_ptr() as *const _),
                        *t.scales.get_unchecked(at),
                    )
                }
            };
            let ctl = (spread, fields, table);
            let end = k.min((j + 1) * block - flat0);
            let (g0, g1) = (c / GROUP, end.div_ceil(GROUP));
            let p = |g: usize| stream.as_ptr().add(byte0 + v * g);
            let in_place = |g: usize| byte0 + v * g + read <= stream.len();
            let (mut a0, mut a1) = ([_mm512_setzero_ps(); V], [_mm512_setzero_ps(); V]);
            let mut g = g0;
            while g + 2 <= g1 && in_place(g + 1) {
                // 2 KiB ahead in the index stream (a prefetch past its end
                // is harmless): ~10% on the down GEMV out of cache at b = 4,
                // 5 in paired runs on the Zen 5 this was written on.
                _mm_prefetch::<_MM_HINT_T0>(p(g).wrapping_add(2048) as *const i8);
                step::<B, V>(p(g), ctl, &xq, g, &mut a0);
                step::<B, V>(p(g + 1), ctl, &xq, g + 1, &mut a1);
                g += 2;
            }
            // The rest one at a time, a0 always the next group's
            // accumulator (swapping them is harmless: only a0 + a1, which
            // commutes, is used).
            for g in g..g1 {
                if in_place(g) {
                    step::<B, V>(p(g), ctl, &xq, g, &mut a0)
                } else {
                    let n = (k - GROUP * g).min(GROUP);
                    tail_step::<B, V>(stream, (flat0 + GROUP * g, n), ctl, &xq, g, &mut a0)
                };
                (a0, a1) = (a1, a0);
            }
            let scale = _mm512_set1_ps(scale);
            for ((row, a0), a1) in row.iter_mut().zip(&a0).zip(&a1) {
                *row = _mm512_fmadd_ps(_mm512_add_ps(*a0, *a1), scale, *row);
            }
            (c, j) = (end, j + 1);
        }
        for (row, y) in row.iter().zip(ys) {
            let out = y.add(i);
            *out = epilogue(reduce(*row), *out, alpha, beta);
        }
    }
}

/// One block's int8 table (`qc + 128`, 64 bytes).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Table([u8; 64]);

/// Registers of 16 rows of Ŵ per GEMM tile.
const NV: usize = GEMM_COLS / 16;

/// The 64 weights whose 8b index bytes are at `p`, looked up in `table`
/// (u8 = `qc + 128`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn lookup<const B: usize>(
    p: *const u8,
    (spread, fields, table): (__m512i, __m512i, __m512i),
) -> __m512i {
    let idx = _mm512_multishift_epi64_epi8(fields, _mm512_permutexvar_epi8(spread, load::<B>(p)));
    _mm512_permutexvar_epi8(idx, table)
}

/// The 16 × 16 dwords of `r` transposed in place: dword s of `r[l]` goes
/// to dword l of `r[s]` (unpacks within 128-bit lanes, then a 4 × 4
/// transpose of the lanes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn transpose16(r: &mut [__m512i; 16]) {
    // t[2i], t[2i+1]: rows 2i and 2i+1 interleaved (dwords 0, 1 and 2, 3
    // of each 128-bit lane).
    let t: [__m512i; 16] = std::array::from_fn(|j| {
        let (a, b) = (r[j & !1], r[j | 1]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    // u[4q + e]: lane b holds dword 4b + e of rows 4q .. 4q + 3.
    let u: [__m512i; 16] = std::array::from_fn(|j| {
        let (q, e) = (j / 4, j % 4);
        let (a, b) = (t[4 * q + e / 2], t[4 * q + 2 + e / 2]);
        if e % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    for e in 0..4 {
        let a0 = _mm512_shuffle_i32x4::<0x44>(u[e], u[4 + e]);
        let a1 = _mm512_shuffle_i32x4::<0xEE>(u[e], u[4 + e]);
        let a2 = _mm512_shuffle_i32x4::<0x44>(u[8 + e], u[12 + e]);
        let a3 = _mm512_shuffle_i32x4::<0xEE>(u[8 + e], u[12 + e]);
        r[e] = _mm512_shuffle_i32x4::<0x88>(a0, a2);
        r[4 + e] = _mm512_shuffle_i32x4::<0xDD>(a0, a2);
        r[8 + e] = _mm512_shuffle_i32x4::<0x88>(a1, a3);
        r[12 + e] = _mm512_shuffle_i32x4::<0xDD>(a1, a3);
    }
}

/// Packs rows `w0 .. w1` (at most GEMM_COLS) of Ŵ for `tile`:
/// `packed[(g·16 + s)·NV + v]` holds in dword lane l the weights
/// 64g + 4s .. 64g + 4s + 3 of row w0 + 16v + l as `qc + 128`, and
/// `sc[(g·NV + v)·16 + l]` that row's `s_c` for group g. Rows past w1 get
/// `qc = 0` and `s_c = 0`. `tables` and `scales` are those of the blocks
/// from `jb0` on.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn pack<const B: usize>(
    m: &CbMatrix,
    (tables, scales, jb0): (&[Table], &[f32], usize),
    (w0, w1): (usize, usize),
    packed: &mut [__m512i],
    sc: &mut [f32],
) {
    let spread = _mm512_loadu_si512(Controls::<B>::SPREAD.as_ptr() as *const _);
    let fields = _mm512_loadu_si512(Controls::<B>::FIELDS.as_ptr() as *const _);
    let (k, block, v_bytes, read) = (m.k(), m.block(), 8 * B, Controls::<B>::READ);
    let stream = m.indices();
    for v in 0..NV {
        // Per lane: its row's first weight and the block of its current group.
        let mut rows: [Option<(usize, usize)>; 16] = std::array::from_fn(|l| {
            let i = w0 + 16 * v + l;
            (i < w1).then(|| (i * k, i * k / block))
        });
        for g in 0..k.div_ceil(GROUP) {
            let mut r = [_mm512_set1_epi8(-128); 16];
            for (l, row) in rows.iter_mut().enumerate() {
                let at = (g * NV + v) * 16 + l;
                let Some((flat0, j)) = row else {
                    *sc.get_unchecked_mut(at) = 0.0;
                    continue;
                };
                while *flat0 + GROUP * g >= (*j + 1) * block {
                    *j += 1;
                }
                let t = *j - jb0;
                let table = _mm512_load_si512(tables.get_unchecked(t).0.as_ptr() as *const _);
                let ctl = (spread, fields, table);
                let byte = *flat0 * B / 8 + v_bytes * g;
                r[l] = if byte + read <= stream.len() {
                    lookup::<B>(stream.as_ptr().add(byte), ctl)
                } else {
                    let n = (k - GROUP * g).min(GROUP);
                    let buf = tail_bytes::<64>(stream, *flat0 + GROUP * g, n, B);
                    lookup::<B>(buf.as_ptr(), ctl)
                };
                *sc.get_unchecked_mut(at) = *scales.get_unchecked(t);
            }
            transpose16(&mut r);
            for (s, r) in r.iter().enumerate() {
                *packed.get_unchecked_mut((g * 16 + s) * NV + v) = *r;
            }
        }
    }
}

/// One register tile: MR rows of X against the packed rows of Ŵ. Per
/// group g, 16 steps of 4 weights, each a `vpdpbusd` of the NV registers
/// of weights (u8) against the row's 4 activations broadcast (i8), from
/// the row's start `−128·Σ xq`, so that lane l ends at the exact
/// `D = Σ qc·xq` of its row of Ŵ; then `acc = fma(f32(D), s_c·s_x[g], acc)`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn tile<const MR: usize>(
    groups: usize,
    packed: *const __m512i,
    sc: *const f32,
    rows: [&Q8Row; MR],
) -> [[__m512; NV]; MR] {
    let x = rows.map(|r| r.values().as_ptr());
    let xs = rows.map(|r| r.scales().as_ptr());
    let starts = rows.map(|r| r.starts().as_ptr());
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for g in 0..groups {
        let mut d: [[__m512i; NV]; MR] =
            std::array::from_fn(|r| [_mm512_set1_epi32(*starts[r].add(g)); NV]);
        let p = packed.add(g * 16 * NV);
        for s in 0..16 {
            let w: [__m512i; NV] = std::array::from_fn(|v| *p.add(s * NV + v));
            for r in 0..MR {
                let four = (x[r].add(GROUP * g + 4 * s) as *const i32).read_unaligned();
                let xb = _mm512_set1_epi32(four);
                for v in 0..NV {
                    d[r][v] = _mm512_dpbusd_epi32(d[r][v], w[v], xb);
                }
            }
        }
        let scv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(sc.add((g * NV + v) * 16)));
        for r in 0..MR {
            let sx = _mm512_set1_ps(*xs[r].add(g));
            for v in 0..NV {
                let scale = _mm512_mul_ps(scv[v], sx);
                acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[r][v]), scale, acc[r][v]);
            }
        }
    }
    acc
}

/// Rows `w0 .. w1` of Ŵ packed for [`tile`] (`pack`): their weights, the
/// `s_c` of each lane's group, and K's group count.
struct Panel<'a> {
    packed: &'a [__m512i],
    sc: &'a [f32],
    groups: usize,
    rows: (usize, usize),
}

/// Where the products go: C := beta·C + alpha·(X·Ŵᵀ).
struct Out {
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
}

/// Rows `r0 .. r0 + R` of X (`xq[r0 ..]`) against the panel, into C
/// through the epilogue.
///
/// # Safety
/// As [`gemm_with`]; `xq` has rows `r0 .. r0 + R`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn tile_into<const R: usize>(panel: &Panel, xq: &[Q8Row], r0: usize, out: &Out) {
    let (w0, w1) = panel.rows;
    let tile_rows: [&Q8Row; R] = std::array::from_fn(|r| &xq[r0 + r]);
    let acc = tile::<R>(
        panel.groups,
        panel.packed.as_ptr(),
        panel.sc.as_ptr(),
        tile_rows,
    );
    let mut sums = [0.0f32; GEMM_COLS];
    for (r, a) in acc.iter().enumerate() {
        for (v, a) in a.iter().enumerate() {
            _mm512_storeu_ps(sums.as_mut_ptr().add(16 * v), *a);
        }
        for (i, &s) in sums.iter().enumerate().take(w1 - w0) {
            let y = out.c.add((r0 + r) * out.ldc + w0 + i);
            *y = epilogue(s, *y, out.alpha, out.beta);
        }
    }
}

/// The GEMM: rows of Ŵ GEMM_COLS at a time, their tables converted and the
/// rows packed (`pack`) once, then against every tile of GEMM_ROWS rows of
/// X, the last tile as many rows as are left (a tile's outputs do not
/// depend on its height: each is its own chain of operations, so one row of
/// X costs one row's `vpdpbusd`s and gets the same bits as in a full tile).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn gemm_with<const B: usize>(
    m: &CbMatrix,
    xq: &[Q8Row],
    (c0, c1): (usize, usize),
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    let (k, block) = (m.k(), m.block());
    let codebooks = m.codebooks();
    let blocks = codebooks.len() >> B;
    let groups = k.div_ceil(GROUP);
    let rows = xq.len();
    let mut t = Tables::empty();
    let (mut tables, mut scales) = (Vec::<Table>::new(), Vec::<f32>::new());
    let mut packed = vec![_mm512_setzero_si512(); groups * 16 * NV];
    let mut sc = vec![0.0f32; groups * NV * 16];
    for w0 in (c0..c1).step_by(GEMM_COLS) {
        let w1 = c1.min(w0 + GEMM_COLS);
        let jb0 = w0 * k / block;
        let jb1 = if k == 0 {
            jb0
        } else {
            (w1 * k).div_ceil(block).min(blocks)
        };
        tables.clear();
        scales.clear();
        let mut j = jb0;
        while j < jb1 {
            let count = CHUNK.min(jb1 - j);
            convert::<B>(codebooks, j, count, &mut t);
            tables.extend(t.bytes[..count].iter().map(|b| Table(*b)));
            scales.extend_from_slice(&t.scales[..count]);
            j += count;
        }
        pack::<B>(m, (&tables, &scales, jb0), (w0, w1), &mut packed, &mut sc);
        let panel = Panel {
            packed: &packed,
            sc: &sc,
            groups,
            rows: (w0, w1),
        };
        let out = Out {
            c,
            ldc,
            alpha,
            beta,
        };
        for r0 in (0..rows).step_by(GEMM_ROWS) {
            let tile: unsafe fn(&Panel, &[Q8Row], usize, &Out) = match rows - r0 {
                1 => tile_into::<1>,
                2 => tile_into::<2>,
                3 => tile_into::<3>,
                4 => tile_into::<4>,
                5 => tile_into::<5>,
                _ => tile_into::<GEMM_ROWS>,
            };
            tile(&panel, xq, r0, &out);
        }
    }
}

/// C[r, i] := beta·C[r, i] + alpha·Ŵ[i, :]·x̂_r for the rows r of `xq` and
/// i in `cols` (`int8::gemm_block_int8`).
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL, VBMI and VNNI; every row has K entries;
/// `int8_fits(m)`; C holds the block.
pub(crate) unsafe fn gemm_block(
    m: &CbMatrix,
    xq: &[Q8Row],
    cols: (usize, usize),
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    match m.bits() {
        2 => gemm_with::<2>(m, xq, cols, c, ldc, alpha, beta),
        3 => gemm_with::<3>(m, xq, cols, c, ldc, alpha, beta),
        4 => gemm_with::<4>(m, xq, cols, c, ldc, alpha, beta),
        5 => gemm_with::<5>(m, xq, cols, c, ldc, alpha, beta),
        6 => gemm_with::<6>(m, xq, cols, c, ldc, alpha, beta),
        b => unreachable!("no int8 kernel for b = {b} (int8_fits)"),
    }
}

/// Quantizes x into the groups (zeroed), scales and sums, one group per
/// 4 registers, as `int8::quantize_group` does: the same max, `127/max`,
/// product and rounding to nearest even. Groups holding a non-finite value
/// or too small for `127/max` go to `quantize_group` itself.
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL, VBMI and VNNI; the three arrays have
/// `ceil(x.len() / 64)` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
pub(crate) unsafe fn quantize(
    x: &[f32],
    groups: &mut [Q8Group],
    scales: &mut [f32],
    sums: &mut [i32],
) {
    let big = _mm512_set1_ps(f32::MAX);
    for (g, group) in groups.iter_mut().enumerate() {
        let xs = &x[GROUP * g..x.len().min(GROUP * (g + 1))];
        let v: [__m512; 4] = std::array::from_fn(|r| {
            let n = xs.len().saturating_sub(16 * r).min(16);
            let mask = ((1u32 << n) - 1) as __mmask16;
            _mm512_maskz_loadu_ps(mask, xs.as_ptr().wrapping_add(16 * r))
        });
        let a = v.map(|v| _mm512_abs_ps(v));
        // |x| > f32::MAX or unordered: an infinity or a NaN.
        let bad = a
            .iter()
            .fold(0, |m, &a| m | _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(a, big));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_max_ps(a[0], a[1]),
            _mm512_max_ps(a[2], a[3]),
        ));
        let inv = 127.0 / amax;
        if bad != 0 || amax == 0.0 || !inv.is_finite() {
            (scales[g], sums[g]) = quantize_group(xs, group);
            continue;
        }
        let inv = _mm512_set1_ps(inv);
        let b = v.map(|v| {
            _mm512_cvtepi32_epi8(_mm512_cvt_roundps_epi32::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(_mm512_mul_ps(v, inv)))
        });
        let q = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm256_set_m128i(b[1], b[0])),
            _mm256_set_m128i(b[3], b[2]),
        );
        // 128·(q[4l] + … + q[4l+3]) per lane.
        let s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(-128), q);
        _mm512_store_si512(group.q.as_mut_ptr() as *mut _, q);
        _mm512_store_si512(
            group.bias.as_mut_ptr() as *mut _,
            _mm512_sub_epi32(_mm512_setzero_si512(), s),
        );
        scales[g] = amax / 127.0;
        sums[g] = _mm512_reduce_add_epi32(s) >> 7;
    }
}

/// y[i] := beta·y[i] + alpha·Ŵ[r0 + i, :]·x̂ for the rows of `y`.
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL, VBMI and VNNI; `xq` has K entries;
/// `int8_fits(m)`.
pub(crate) unsafe fn gemv_rows(
    m: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    xq: &Q8Vector,
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    let one = ([xq], [y.as_mut_ptr()]);
    let rows = (r0, y.len());
    match m.bits() {
        2 => gemv_rows_with::<2, 1>(m, converted, one, rows, alpha, beta),
        3 => gemv_rows_with::<3, 1>(m, converted, one, rows, alpha, beta),
        4 => gemv_rows_with::<4, 1>(m, converted, one, rows, alpha, beta),
        5 => gemv_rows_with::<5, 1>(m, converted, one, rows, alpha, beta),
        6 => gemv_rows_with::<6, 1>(m, converted, one, rows, alpha, beta),
        b => unreachable!("no int8 kernel for b = {b} (int8_fits)"),
    }
}

/// Vectors multiplied per pass over the weights by [`gemv_many`].
const MANY: usize = 4;

/// `gemv_rows_with` for the vectors `xq` (output v at `ys[v]`, rows `r0 ..
/// r0 + n`), MANY at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn gemv_many_with<const B: usize>(
    m: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    (xq, ys): (&[Q8Vector], &[*mut f32]),
    rows: (usize, usize),
    alpha: f32,
    beta: f32,
) {
    for (xq, ys) in xq.chunks(MANY).zip(ys.chunks(MANY)) {
        macro_rules! run {
            ($v:literal) => {
                gemv_rows_with::<B, $v>(
                    m,
                    converted,
                    (
                        std::array::from_fn(|v| &xq[v]),
                        std::array::from_fn(|v| ys[v]),
                    ),
                    rows,
                    alpha,
                    beta,
                )
            };
        }
        match xq.len() {
            1 => run!(1),
            2 => run!(2),
            3 => run!(3),
            _ => run!(4),
        }
    }
}

/// The int8 GEMV of each vector of `xq` into `ys[v][0 .. n]` (rows `r0 ..
/// r0 + n` of Ŵ), the weights looked up once per MANY vectors: each output
/// the 1-vector GEMV's, bit for bit.
///
/// # Safety
/// As [`gemv_rows`], for every vector; `ys[v]` points at n writable f32
/// that no other thread writes; `ys.len() == xq.len()`.
pub(crate) unsafe fn gemv_many(
    m: &CbMatrix,
    converted: Option<&Int8Codebooks>,
    (xq, ys): (&[Q8Vector], &[*mut f32]),
    rows: (usize, usize),
    alpha: f32,
    beta: f32,
) {
    let many = (xq, ys);
    match m.bits() {
        2 => gemv_many_with::<2>(m, converted, many, rows, alpha, beta),
        3 => gemv_many_with::<3>(m, converted, many, rows, alpha, beta),
        4 => gemv_many_with::<4>(m, converted, many, rows, alpha, beta),
        5 => gemv_many_with::<5>(m, converted, many, rows, alpha, beta),
        6 => gemv_many_with::<6>(m, converted, many, rows, alpha, beta),
        b => unreachable!("no int8 kernel for b = {b} (int8_fits)"),
    }
}
