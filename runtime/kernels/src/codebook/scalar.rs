//! The scalar kernels: the fallback on CPUs without the SIMD paths, and the
//! *twins* the tests hold every SIMD kernel against.
//!
//! To make that comparison exact rather than approximate, the scalar GEMV
//! sums in the order the SIMD kernels do: `W` interleaved partial sums
//! (element `i` of a segment goes to partial sum `i mod W`, with a fused
//! multiply-add), reduced by halving ([`reduce_halving`]). A SIMD kernel with
//! `U` accumulator registers of `L` lanes has `W = U·L` and reproduces
//! `gemv_rows::<W>` bit for bit. The GEMM tile sums each output in plain
//! `k` order with fused multiply-adds, as the SIMD tiles do per lane, so it
//! matches them whatever their tile shape.

use half::f16;

use super::gemm::Gemm;
use super::int8::{int8_codebook_scale, Q8Row, Q8Vector, GROUP, LANES};
use super::layout::{epilogue, reduce_halving, CbMatrix, Segment};

pub(crate) use ditto_contracts::codebook::unpack8;

/// The segment's codebook widened to f32 (the first `2^b` entries used).
#[inline]
fn widen(codebook: &[f16]) -> [f32; 256] {
    let mut table = [0.0f32; 256];
    for (t, c) in table.iter_mut().zip(codebook) {
        *t = c.to_f32();
    }
    table
}

/// Calls `f(i, index)` for the segment's weights in order, eight indices
/// (b bytes) at a time.
#[inline]
fn for_each_index(seg: &Segment, bits: usize, mut f: impl FnMut(usize, usize)) {
    for g in 0..seg.len.div_ceil(8) {
        let q = unpack8(&seg.indices[g * bits..], bits);
        for (t, &q) in q.iter().enumerate().take(seg.len - 8 * g) {
            f(8 * g + t, q as usize);
        }
    }
}

/// Calls `f(i, Ŵ value)` for the segment's weights in order.
#[inline]
fn for_each_weight(seg: &Segment, bits: usize, mut f: impl FnMut(usize, f32)) {
    let table = widen(seg.codebook);
    for_each_index(seg, bits, |i, q| f(i, table[q]));
}

/// y[i] := epilogue(Ŵ[r0 + i, :]·x) for the rows of `y`, summing in `W`
/// interleaved partial sums.
pub(crate) fn gemv_rows<const W: usize>(
    m: &CbMatrix,
    x: &[f32],
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    for (i, out) in y.iter_mut().enumerate() {
        let mut acc = [0.0f32; W];
        for seg in m.segments(r0 + i, 0, m.k()) {
            let x = &x[seg.k0..seg.k0 + seg.len];
            for_each_weight(&seg, m.bits(), |i, w| {
                acc[i % W] = w.mul_add(x[i], acc[i % W]);
            });
        }
        *out = epilogue(reduce_halving(acc), *out, alpha, beta);
    }
}

/// A segment's codebook in int8 and its scale (`int8.rs`): the first
/// `2^b` entries of the table are used.
pub(crate) fn int8_codebook(codebook: &[f16]) -> ([i8; 64], f32) {
    let amax = codebook.iter().fold(0.0f32, |m, c| m.max(c.to_f32().abs()));
    let (scale, inv) = int8_codebook_scale(amax);
    let mut table = [0i8; 64];
    for (t, c) in table.iter_mut().zip(codebook) {
        *t = (c.to_f32() * inv).round_ties_even() as i8;
    }
    (table, scale)
}

/// The twin of the int8-activation GEMV (`int8.rs`): per group of 64
/// weights the 16 lanes' exact integer sums `Σ qc·xq` (lane l: weights
/// 4l..4l+3 of the group), each summed as f32 with a fused multiply-add
/// by `s_x[g]` into accumulator `j mod 2` (j the group's place in its
/// segment); per segment `row[l] = (acc0[l] + acc1[l])·s_c + row[l]`; the
/// 16 lanes reduced by halving. The caller checked `int8_fits`.
pub(crate) fn gemv_rows_int8(
    m: &CbMatrix,
    xq: &Q8Vector,
    y: &mut [f32],
    r0: usize,
    alpha: f32,
    beta: f32,
) {
    let groups = xq.groups();
    let value = |g: usize, t: usize| groups[g].q[t] as i32;
    for (i, out) in y.iter_mut().enumerate() {
        let s = row_int8(m, r0 + i, value, xq.scales());
        *out = epilogue(s, *out, alpha, beta);
    }
}

/// Ŵ[row, :]·x̂ as the int8 kernels sum it (before the epilogue), x̂ given
/// by its values `value(g, t)` = xq[64g + t] and scales.
fn row_int8(m: &CbMatrix, row: usize, value: impl Fn(usize, usize) -> i32, scales: &[f32]) -> f32 {
    let bits = m.bits();
    let mut acc_row = [0.0f32; LANES];
    for seg in m.segments(row, 0, m.k()) {
        let (table, scale) = int8_codebook(seg.codebook);
        let mut acc = [[0.0f32; LANES]; 2];
        for j in 0..seg.len.div_ceil(GROUP) {
            let g = seg.k0 / GROUP + j;
            let sx = scales[g];
            let mut lanes = [0i32; LANES];
            for t in 0..(seg.len - GROUP * j).min(GROUP) {
                let w = GROUP * j + t; // the weight's place in the segment
                let q = unpack8(&seg.indices[w / 8 * bits..], bits)[w % 8];
                lanes[t / 4] += table[q as usize] as i32 * value(g, t);
            }
            for (a, &s) in acc[j % 2].iter_mut().zip(&lanes) {
                *a = (s as f32).mul_add(sx, *a);
            }
        }
        for (l, r) in acc_row.iter_mut().enumerate() {
            *r = (acc[0][l] + acc[1][l]).mul_add(scale, *r);
        }
    }
    reduce_halving(acc_row)
}

/// The twin of the int8-activation GEMM (`int8.rs`): per output C[r, i],
/// per group g of row i in k order (each group lies in one segment, as
/// `int8_fits` ensures), the exact `D = Σ qc·xq` of its weights, then
/// `acc = fma(f32(D), s_c·s_x[g], acc)`; then the epilogue. The caller
/// checked `int8_fits` and that C holds the block.
pub(crate) unsafe fn gemm_block_int8(
    m: &CbMatrix,
    xq: &[Q8Row],
    (c0, c1): (usize, usize),
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    let (k, bits) = (m.k(), m.bits());
    let groups = k.div_ceil(GROUP);
    // Row i of Ŵ in int8: its qc (0 past K) and each group's s_c.
    let (mut qc, mut sc) = (vec![0i8; groups * GROUP], vec![0.0f32; groups]);
    for i in c0..c1 {
        for seg in m.segments(i, 0, k) {
            let (table, scale) = int8_codebook(seg.codebook);
            for_each_index(&seg, bits, |t, q| qc[seg.k0 + t] = table[q]);
            sc[seg.k0 / GROUP..(seg.k0 + seg.len).div_ceil(GROUP)].fill(scale);
        }
        for (r, x) in xq.iter().enumerate() {
            let mut acc = 0.0f32;
            for (g, (w, xv)) in qc.chunks(GROUP).zip(x.values().chunks(GROUP)).enumerate() {
                let d: i32 = w.iter().zip(xv).map(|(&w, &xv)| w as i32 * xv as i32).sum();
                acc = (d as f32).mul_add(sc[g] * x.scales()[g], acc);
            }
            let out = c.add(r * ldc + i);
            *out = epilogue(acc, *out, alpha, beta);
        }
    }
}

/// out := Ŵ[row, k0 .. k0 + out.len()].
pub(crate) fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
    for seg in m.segments(row, k0, k0 + out.len()) {
        let out = &mut out[seg.k0 - k0..seg.k0 - k0 + seg.len];
        for_each_weight(&seg, m.bits(), |i, w| out[i] = w);
    }
}

/// The scalar GEMM tile (any shape gives the same sums).
pub(crate) struct ScalarGemm;

impl Gemm for ScalarGemm {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]) {
        decode_range(m, row, k0, out)
    }

    /// s[r][j] += Σ_k xs[r][k] · panel[k][j], one fused multiply-add at a
    /// time in k order.
    unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32) {
        let nr = Self::NR;
        for (r, &x) in xs.iter().enumerate() {
            for j in 0..nr {
                let mut acc = *s.add(r * nr + j);
                for k in 0..kc {
                    acc = (*x.add(k)).mul_add(*panel.add(k * nr + j), acc);
                }
                *s.add(r * nr + j) = acc;
            }
        }
    }
}
