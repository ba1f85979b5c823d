//! The codebook format's parameters (docs/codebook-format.md), defined once
//! in `ditto_contracts::codebook` for the quantizer, the verifier and the
//! kernels; here they meet the quantizer's error type.

pub use ditto_contracts::codebook::{Format, FormatError, SUPPORTED_BITS};

use crate::invalid::{QuantizeError, Result};

/// Checks that `bits` is one of [`SUPPORTED_BITS`].
pub fn check_bits(bits: u8) -> Result<()> {
    Ok(ditto_contracts::codebook::check_bits(bits)?)
}

impl From<FormatError> for QuantizeError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedBits { bits } => QuantizeError::UnsupportedBits {
                bits: u8::try_from(bits).unwrap_or(u8::MAX),
            },
            FormatError::BadBlock { block } => QuantizeError::BadBlock {
                block: usize::try_from(block).unwrap_or(usize::MAX),
            },
            FormatError::BadShape { n, k } => QuantizeError::BadShape { n, k },
            FormatError::RowNotByteAligned { k, bits } => {
                QuantizeError::RowNotByteAligned { k, bits }
            }
            FormatError::LengthMismatch {
                what,
                expected,
                found,
            } => QuantizeError::LengthMismatch {
                what,
                expected,
                found,
            },
            FormatError::IndexOutOfRange {
                position,
                value,
                bits,
            } => QuantizeError::IndexOutOfRange {
                position,
                value,
                bits,
            },
        }
    }
}
