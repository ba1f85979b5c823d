//! The int8 GEMM on Ŵ in panels (`panels.rs`) for x86-64 AVX-512 with
//! VBMI and VNNI: C := beta·C + alpha·X̂·Ŵᵀ for any number of rows of X,
//! one of them included (the decode step's product).
//!
//! Per panel (16 rows of Ŵ), tile of up to 8 rows of X (`TILE_ROWS`) and
//! group g:
//!
//! * the 16 rows' tables in 1, 2 or 4 registers (b = 2, 3, 4);
//! * per step s of 4 columns: the 64 indices unpacked as the GEMV unpacks
//!   a group (`vpermb` spread, `vpmultishiftqb`), masked to b bits and
//!   offset by their lane's table (`(l << b)`), looked up (`vpermb`, or
//!   `vpermi2b`, or two of them blended by lane half): dword lane l holds
//!   4 weights of row l as `qc + 128`; then one `vpdpbusd` per row of X
//!   against its 4 activations broadcast, from the row's `−128·Σ xq`;
//! * lane l ends at the exact `D = Σ qc·xq` of its (row of X, row of Ŵ);
//!   `acc = fma(f32(D), s_c·s_x[g], acc)`: the int8 GEMM's operations in its
//!   order (`avx512_vnni::tile`), so every output is bit for bit its.

use std::arch::x86_64::*;

use super::avx512_vnni::{load, Controls};
use super::int8::{Q8Row, GROUP};
use super::layout::epilogue;
use super::panels::{Int8Panels, PANEL_ROWS};

/// Rows of X per tile: 8 accumulators of integers and 8 of sums beside
/// the 4 table registers and the controls fit the 32 registers.
const TILE_ROWS: usize = 8;

/// Byte 4l + t: lane l's table offset, `(l << b)` within the registers
/// its lookup reads (b = 4: lanes 8-15 read the second pair).
const fn lane_offsets(bits: usize) -> [u8; 64] {
    let mut c = [0u8; 64];
    let mut q = 0;
    while q < 64 {
        let l = q / 4;
        c[q] = (((if bits == 4 { l % 8 } else { l }) << bits) & 0x7f) as u8;
        q += 1;
    }
    c
}

struct Lanes<const B: usize>;

impl<const B: usize> Lanes<B> {
    const OFFSETS: [u8; 64] = lane_offsets(B);
}

/// The 16 rows' weights of one step: lane l = 4 weights of row l, `qc + 128`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn weights<const B: usize>(
    p: *const u8,
    (spread, fields, mask, offsets): (__m512i, __m512i, __m512i, __m512i),
    t: &[__m512i; 4],
) -> __m512i {
    let raw = _mm512_multishift_epi64_epi8(fields, _mm512_permutexvar_epi8(spread, load::<B>(p)));
    let idx = _mm512_or_si512(_mm512_and_si512(raw, mask), offsets);
    match B {
        2 => _mm512_permutexvar_epi8(idx, t[0]),
        3 => _mm512_permutex2var_epi8(t[0], idx, t[1]),
        _ => _mm512_mask_blend_epi8(
            0xFFFF_FFFF_0000_0000,
            _mm512_permutex2var_epi8(t[0], idx, t[1]),
            _mm512_permutex2var_epi8(t[2], idx, t[3]),
        ),
    }
}

/// Panel `p` against MR rows of X: lane l of `acc[r]` = row r's sum with
/// row 16p + l of Ŵ (before the epilogue).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn tile<const B: usize, const MR: usize>(
    pn: &Int8Panels,
    p: usize,
    rows: [&Q8Row; MR],
) -> [__m512; MR] {
    let ctl = (
        _mm512_loadu_si512(Controls::<B>::SPREAD.as_ptr() as *const _),
        _mm512_loadu_si512(Controls::<B>::FIELDS.as_ptr() as *const _),
        _mm512_set1_epi8(((1u32 << B) - 1) as i8),
        _mm512_loadu_si512(Lanes::<B>::OFFSETS.as_ptr() as *const _),
    );
    let groups = pn.groups();
    let chunk = 8 * B;
    let table_bytes = PANEL_ROWS << B;
    let x = rows.map(|r| r.values().as_ptr());
    let xs = rows.map(|r| r.scales().as_ptr());
    let starts = rows.map(|r| r.starts().as_ptr());
    let (indices, tables, scales) = (pn.indices().as_ptr(), pn.tables().as_ptr(), pn.scales());
    let mut acc = [_mm512_setzero_ps(); MR];
    for g in 0..groups {
        let pg = p * groups + g;
        let tp = tables.add(pg * table_bytes);
        let t: [__m512i; 4] = std::array::from_fn(|i| {
            if 64 * i < table_bytes {
                _mm512_loadu_si512(tp.add(64 * i) as *const _)
            } else {
                _mm512_setzero_si512()
            }
        });
        let mut d: [__m512i; MR] = std::array::from_fn(|r| _mm512_set1_epi32(*starts[r].add(g)));
        let ip = indices.add(pg * 16 * chunk);
        for s in 0..16 {
            let w = weights::<B>(ip.add(s * chunk), ctl, &t);
            for r in 0..MR {
                let four = (x[r].add(GROUP * g + 4 * s) as *const i32).read_unaligned();
                d[r] = _mm512_dpbusd_epi32(d[r], w, _mm512_set1_epi32(four));
            }
        }
        let scv = _mm512_loadu_ps(scales.as_ptr().add(pg * PANEL_ROWS));
        for r in 0..MR {
            let scale = _mm512_mul_ps(scv, _mm512_set1_ps(*xs[r].add(g)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[r]), scale, acc[r]);
        }
    }
    acc
}

/// Where the products go: C := beta·C + alpha·(X·Ŵᵀ), columns c0..c1.
struct Out {
    c: *mut f32,
    ldc: usize,
    cols: (usize, usize),
    alpha: f32,
    beta: f32,
}

/// Rows `r0 .. r0 + MR` of X against panel p, into the columns of C it
/// holds within `out.cols`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn tile_into<const B: usize, const MR: usize>(
    pn: &Int8Panels,
    p: usize,
    (xq, r0): (&[Q8Row], usize),
    out: &Out,
) {
    let rows: [&Q8Row; MR] = std::array::from_fn(|r| &xq[r0 + r]);
    let acc = tile::<B, MR>(pn, p, rows);
    let first = PANEL_ROWS * p;
    let (c0, c1) = (out.cols.0.max(first), out.cols.1.min(first + PANEL_ROWS));
    let mut sums = [0.0f32; PANEL_ROWS];
    for (r, a) in acc.iter().enumerate() {
        _mm512_storeu_ps(sums.as_mut_ptr(), *a);
        for col in c0..c1 {
            let y = out.c.add((r0 + r) * out.ldc + col);
            *y = epilogue(sums[col - first], *y, out.alpha, out.beta);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
unsafe fn gemm_with<const B: usize>(pn: &Int8Panels, xq: &[Q8Row], out: &Out) {
    let (c0, c1) = out.cols;
    for p in c0 / PANEL_ROWS..c1.div_ceil(PANEL_ROWS) {
        for r0 in (0..xq.len()).step_by(TILE_ROWS) {
            let tile: unsafe fn(&Int8Panels, usize, (&[Q8Row], usize), &Out) = match xq.len() - r0 {
                1 => tile_into::<B, 1>,
                2 => tile_into::<B, 2>,
                3 => tile_into::<B, 3>,
                4 => tile_into::<B, 4>,
                5 => tile_into::<B, 5>,
                6 => tile_into::<B, 6>,
                7 => tile_into::<B, 7>,
                _ => tile_into::<B, TILE_ROWS>,
            };
            tile(pn, p, (xq, r0), out);
        }
    }
}

/// C[r, i] := beta·C[r, i] + alpha·Ŵ[i, :]·x̂_r for the rows r of `xq`
/// and i in `cols`, from the panels.
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL, VBMI and VNNI; every row has K entries;
/// C holds the block; no other thread writes it.
pub(crate) unsafe fn gemm_block(
    pn: &Int8Panels,
    xq: &[Q8Row],
    cols: (usize, usize),
    c: *mut f32,
    ldc: usize,
    (alpha, beta): (f32, f32),
) {
    let out = Out {
        c,
        ldc,
        cols,
        alpha,
        beta,
    };
    match pn.bits() {
        2 => gemm_with::<2>(pn, xq, &out),
        3 => gemm_with::<3>(pn, xq, &out),
        4 => gemm_with::<4>(pn, xq, &out),
        b => unreachable!("no panels of b = {b}"),
    }
}
