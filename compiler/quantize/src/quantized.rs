//! A quantized tensor in the codebook format, and its dequantization.

use half::f16;
use rayon::prelude::*;

use crate::format::Format;
use crate::invalid::{check_len, QuantizeError, Result};
use crate::pack::unpack_unchecked;

/// One `[N, K]` tensor in the codebook format (docs/codebook-format.md):
/// weight `i = n·K + k` is `codebooks[(i / block) · 2^bits + q_i]`, where `q_i`
/// is bits `[i·bits, (i+1)·bits)` of the little-endian bit stream `indices`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    /// Rows.
    pub n: usize,
    /// Columns (input dimension).
    pub k: usize,
    /// Index width.
    pub bits: u8,
    /// Weights per codebook.
    pub block: usize,
    /// ⌈N·K·bits / 8⌉ bytes of packed indices.
    pub indices: Vec<u8>,
    /// ⌈N·K / block⌉ codebooks of 2^bits centroids each, ascending.
    pub codebooks: Vec<f16>,
}

impl Quantized {
    /// The format parameters, after checking them and the array lengths.
    pub fn format(&self) -> Result<Format> {
        let f = Format::new(self.n, self.k, self.bits, self.block)?;
        check_len(
            "packed indices (bytes)",
            f.index_bytes(),
            self.indices.len(),
        )?;
        check_len("codebook entries", f.codebook_len(), self.codebooks.len())?;
        Ok(f)
    }

    /// Storage in bytes: packed indices plus 2 bytes per codebook entry.
    pub fn bytes(&self) -> usize {
        self.indices.len() + 2 * self.codebooks.len()
    }

    /// Writes row `r < N` of Ŵ into `out` (length K).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        let f = self.format()?;
        if r >= f.n {
            return Err(QuantizeError::RowOutOfRange { row: r, rows: f.n });
        }
        check_len("output row (K)", f.k, out.len())?;
        self.dequantize_row_unchecked(r, out);
        Ok(())
    }

    /// [`Quantized::dequantize_row`] for a tensor already validated by
    /// [`Quantized::format`], `r < N` and `out.len() == K`.
    pub(crate) fn dequantize_row_unchecked(&self, r: usize, out: &mut [f32]) {
        let (k, b, block) = (self.k, self.bits as usize, self.block);
        let levels = 1usize << b;
        // K·b is a multiple of 8: row r is the bytes [r·K·b/8, (r+1)·K·b/8).
        let row_bytes = k * b / 8;
        let packed = &self.indices[r * row_bytes..(r + 1) * row_bytes];
        let mut q = vec![0u8; k];
        unpack_unchecked(packed, self.bits, &mut q);
        for (c, (o, &qi)) in out.iter_mut().zip(&q).enumerate() {
            let j = (r * k + c) / block;
            *o = self.codebooks[j * levels + qi as usize].to_f32();
        }
    }
}

/// Ŵ as f32, row-major `[N, K]`: every weight replaced by its centroid.
pub fn dequantize(q: &Quantized) -> Result<Vec<f32>> {
    let f = q.format()?;
    let mut out = vec![0.0f32; f.len()];
    let levels = f.levels();
    out.par_chunks_mut(f.block)
        .zip(q.indices.par_chunks(f.block_index_bytes()))
        .zip(q.codebooks.par_chunks(levels))
        .for_each_init(
            || vec![0u8; f.block],
            |idx, ((o, packed), book)| {
                let idx = &mut idx[..o.len()];
                unpack_unchecked(packed, f.bits, idx);
                for (y, &i) in o.iter_mut().zip(idx.iter()) {
                    *y = book[i as usize].to_f32();
                }
            },
        );
    Ok(out)
}
