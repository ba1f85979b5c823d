//! The quantized block formats (ggml-common.h) and their dequantization,
//! written to give the same f32 values as ggml-quants.c `dequantize_row_*`:
//! the same integer decoding and the same order of f32 operations.
//!
//! Every struct holds only byte arrays, so it has alignment 1, no padding and
//! every bit pattern is valid: a byte slice can be viewed as a slice of blocks
//! without copying and without unaligned references (see [`as_blocks`]).
//! f16 fields are kept as their little-endian bytes.

use half::f16;

/// A quantized block: `QK` weights stored in `size_of::<Self>()` bytes.
pub(crate) trait Block: Sized + Sync {
    /// Weights per block.
    const QK: usize;
    /// Writes the block's `QK` weights to `y` (`y.len() == QK`).
    fn dequantize(&self, y: &mut [f32]);
}

/// Views `bytes` as blocks; `None` unless `bytes.len()` is a multiple of the
/// block size.
pub(crate) fn as_blocks<B: Block>(bytes: &[u8]) -> Option<&[B]> {
    let size = std::mem::size_of::<B>();
    if std::mem::align_of::<B>() != 1 || size == 0 || !bytes.len().is_multiple_of(size) {
        return None;
    }
    // SAFETY: B is a repr(C) struct of byte arrays (alignment 1, no padding,
    // no invalid bit patterns; checked above and by the compile-time asserts
    // below), and the slice covers exactly `bytes.len() / size` blocks
    // inside `bytes`.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<B>(), bytes.len() / size) })
}

#[inline]
fn h(b: [u8; 2]) -> f32 {
    f16::from_le_bytes(b).to_f32()
}

const QK_K: usize = 256;
const K_SCALE_SIZE: usize = 12;

#[repr(C)]
pub(crate) struct BlockQ4_0 {
    d: [u8; 2],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(std::mem::align_of::<BlockQ4_0>() == 1);

impl Block for BlockQ4_0 {
    const QK: usize = 32;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0F) as i32 - 8;
            let x1 = (self.qs[j] >> 4) as i32 - 8;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ4_1 {
    d: [u8; 2],
    m: [u8; 2],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(std::mem::align_of::<BlockQ4_1>() == 1);

impl Block for BlockQ4_1 {
    const QK: usize = 32;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        let m = h(self.m);
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0F) as i32;
            let x1 = (self.qs[j] >> 4) as i32;
            y[j] = x0 as f32 * d + m;
            y[j + 16] = x1 as f32 * d + m;
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ5_0 {
    d: [u8; 2],
    qh: [u8; 4],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(std::mem::align_of::<BlockQ5_0>() == 1);

impl Block for BlockQ5_0 {
    const QK: usize = 32;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((self.qs[j] as u32 & 0x0F) | xh_0) as i32 - 16;
            let x1 = ((self.qs[j] as u32 >> 4) | xh_1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ5_1 {
    d: [u8; 2],
    m: [u8; 2],
    qh: [u8; 4],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);
const _: () = assert!(std::mem::align_of::<BlockQ5_1>() == 1);

impl Block for BlockQ5_1 {
    const QK: usize = 32;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        let m = h(self.m);
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = (self.qs[j] as u32 & 0x0F) | xh_0;
            let x1 = (self.qs[j] as u32 >> 4) | xh_1;
            y[j] = x0 as f32 * d + m;
            y[j + 16] = x1 as f32 * d + m;
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ8_0 {
    d: [u8; 2],
    qs: [u8; 32],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::align_of::<BlockQ8_0>() == 1);

impl Block for BlockQ8_0 {
    const QK: usize = 32;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        for (y, &q) in y.iter_mut().zip(&self.qs) {
            *y = (q as i8) as f32 * d;
        }
    }
}

/// Scale and min of sub-block `j` from the 12 packed 6-bit values
/// (`get_scale_min_k4` in ggml-quants.c).
#[inline]
fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[repr(C)]
pub(crate) struct BlockQ4K {
    d: [u8; 2],
    dmin: [u8; 2],
    scales: [u8; K_SCALE_SIZE],
    qs: [u8; QK_K / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(std::mem::align_of::<BlockQ4K>() == 1);

impl Block for BlockQ4K {
    const QK: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        let min = h(self.dmin);
        for (g, (y, q)) in y
            .chunks_exact_mut(64)
            .zip(self.qs.chunks_exact(32))
            .enumerate()
        {
            let (sc, m) = scale_min_k4(2 * g, &self.scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = scale_min_k4(2 * g + 1, &self.scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            for l in 0..32 {
                y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
                y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ5K {
    d: [u8; 2],
    dmin: [u8; 2],
    scales: [u8; K_SCALE_SIZE],
    qh: [u8; QK_K / 8],
    qs: [u8; QK_K / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);
const _: () = assert!(std::mem::align_of::<BlockQ5K>() == 1);

impl Block for BlockQ5K {
    const QK: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        let min = h(self.dmin);
        for (g, (y, ql)) in y
            .chunks_exact_mut(64)
            .zip(self.qs.chunks_exact(32))
            .enumerate()
        {
            let (sc, m) = scale_min_k4(2 * g, &self.scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = scale_min_k4(2 * g + 1, &self.scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            let u1 = 1u8 << (2 * g);
            let u2 = 2u8 << (2 * g);
            for l in 0..32 {
                let hi1 = if self.qh[l] & u1 != 0 { 16 } else { 0 };
                let hi2 = if self.qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * ((ql[l] & 0x0F) + hi1) as f32 - m1;
                y[l + 32] = d2 * ((ql[l] >> 4) + hi2) as f32 - m2;
            }
        }
    }
}

#[repr(C)]
pub(crate) struct BlockQ6K {
    ql: [u8; QK_K / 2],
    qh: [u8; QK_K / 4],
    scales: [u8; QK_K / 16],
    d: [u8; 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(std::mem::align_of::<BlockQ6K>() == 1);

impl Block for BlockQ6K {
    const QK: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let d = h(self.d);
        for n in 0..2 {
            let y = &mut y[n * 128..(n + 1) * 128];
            let ql = &self.ql[n * 64..(n + 1) * 64];
            let qh = &self.qh[n * 32..(n + 1) * 32];
            let sc = &self.scales[n * 8..(n + 1) * 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                let s = |k: usize| d * (sc[is + k] as i8) as f32;
                y[l] = s(0) * q1 as f32;
                y[l + 32] = s(2) * q2 as f32;
                y[l + 64] = s(4) * q3 as f32;
                y[l + 96] = s(6) * q4 as f32;
            }
        }
    }
}
