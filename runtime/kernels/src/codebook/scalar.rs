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
use super::layout::{epilogue, reduce_halving, CbMatrix, Segment};

/// Eight `b`-bit indices from the front of `bytes` (fewer bytes at the end
/// of the stream are zero-extended): the stream read as a little-endian
/// integer, index `t` at bits `[t·b, (t+1)·b)`.
#[inline]
pub(crate) fn unpack8(bytes: &[u8], bits: usize) -> [u8; 8] {
    let mut buf = [0u8; 8];
    let n = bits.min(bytes.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    let word = u64::from_le_bytes(buf);
    let mask = (1u64 << bits) - 1;
    std::array::from_fn(|t| ((word >> (t * bits)) & mask) as u8)
}

/// The segment's codebook widened to f32 (the first `2^b` entries used).
#[inline]
fn widen(codebook: &[f16]) -> [f32; 256] {
    let mut table = [0.0f32; 256];
    for (t, c) in table.iter_mut().zip(codebook) {
        *t = c.to_f32();
    }
    table
}

/// Calls `f(i, Ŵ value)` for the segment's weights in order, eight indices
/// (b bytes) at a time.
#[inline]
fn for_each_weight(seg: &Segment, bits: usize, mut f: impl FnMut(usize, f32)) {
    let table = widen(seg.codebook);
    for g in 0..seg.len.div_ceil(8) {
        let q = unpack8(&seg.indices[g * bits..], bits);
        for (t, &q) in q.iter().enumerate().take(seg.len - 8 * g) {
            f(8 * g + t, table[q as usize]);
        }
    }
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
