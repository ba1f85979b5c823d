//! The parameters of the codebook format (docs/codebook-format.md) and the
//! storage sizes they imply.

use serde::{Deserialize, Serialize};

use crate::invalid::{QuantizeError, Result};

/// Index widths the format allows.
pub const SUPPORTED_BITS: [u8; 6] = [2, 3, 4, 5, 6, 8];

// A codebook entry is an IEEE binary16 of exactly two bytes, as the layout
// (`f16[⌈N·K/B⌉][2^b]`) and every size computed here assume.
const _: () = assert!(std::mem::size_of::<half::f16>() == 2);
// Indices are stored in `u8`: the widest width must fit.
const _: () = assert!(SUPPORTED_BITS[SUPPORTED_BITS.len() - 1] <= 8);

/// Checks that `bits` is one of [`SUPPORTED_BITS`].
pub fn check_bits(bits: u8) -> Result<()> {
    if SUPPORTED_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(QuantizeError::UnsupportedBits { bits })
    }
}

/// The validated parameters of one quantized `[N, K]` tensor: `bits`-bit
/// indices into per-block codebooks of `2^bits` f16 centroids, one codebook per
/// `block` consecutive weights in row-major order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Format {
    /// Rows (output dimension).
    pub n: usize,
    /// Columns (input dimension).
    pub k: usize,
    /// Index width b.
    pub bits: u8,
    /// Weights per codebook B.
    pub block: usize,
}

impl Format {
    /// Validates the parameters: b ∈ {2,3,4,5,6,8}, B a positive multiple of
    /// 8, N, K > 0 with N·K·b representable, and K·b a multiple of 8.
    pub fn new(n: usize, k: usize, bits: u8, block: usize) -> Result<Self> {
        check_bits(bits)?;
        if block == 0 || !block.is_multiple_of(8) {
            return Err(QuantizeError::BadBlock { block });
        }
        let elems = n.checked_mul(k).filter(|&e| e > 0);
        if elems.and_then(|e| e.checked_mul(8)).is_none() {
            return Err(QuantizeError::BadShape { n, k });
        }
        if !(k * bits as usize).is_multiple_of(8) {
            return Err(QuantizeError::RowNotByteAligned { k, bits });
        }
        Ok(Self { n, k, bits, block })
    }

    /// N·K.
    pub fn len(&self) -> usize {
        self.n * self.k
    }

    /// Always false: a valid format has at least one element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 2^b, the codebook length.
    pub fn levels(&self) -> usize {
        1 << self.bits
    }

    /// ⌈N·K / B⌉, the number of codebooks (the last block may be shorter).
    pub fn blocks(&self) -> usize {
        self.len().div_ceil(self.block)
    }

    /// B·b / 8, the bytes of indices of one full block.
    pub fn block_index_bytes(&self) -> usize {
        self.block * self.bits as usize / 8
    }

    /// ⌈N·K·b / 8⌉, the length of the index bit stream in bytes.
    pub fn index_bytes(&self) -> usize {
        (self.len() * self.bits as usize).div_ceil(8)
    }

    /// ⌈N·K / B⌉ · 2^b, the number of f16 codebook entries.
    pub fn codebook_len(&self) -> usize {
        self.blocks() * self.levels()
    }

    /// Bytes of the codebooks (2 per entry).
    pub fn codebook_bytes(&self) -> usize {
        2 * self.codebook_len()
    }

    /// Index bytes plus codebook bytes.
    pub fn bytes(&self) -> usize {
        self.index_bytes() + self.codebook_bytes()
    }

    /// Storage per weight, `8 · bytes / (N·K)`; for a whole number of blocks
    /// this is `b + 16·2^b / B`.
    pub fn bits_per_weight(&self) -> f64 {
        8.0 * self.bytes() as f64 / self.len() as f64
    }

    /// Row and column of flat weight index `i = n·K + k`.
    pub fn row_col(&self, i: usize) -> (usize, usize) {
        (i / self.k, i % self.k)
    }
}
