//! Bit packing of codebook indices (docs/codebook-format.md, "Layout"): the
//! codebook contract's packer (`ditto_contracts::codebook`) with the
//! quantizer's error type.
//!
//! The indices form one little-endian bit stream: index `i` occupies bits
//! `[i·b, (i+1)·b)`, and bit `t` of the stream is bit `t mod 8` of byte
//! `t / 8`.

use ditto_contracts::codebook;

pub use ditto_contracts::codebook::packed_len;
pub(crate) use ditto_contracts::codebook::{pack_unchecked, unpack_unchecked};

use crate::invalid::Result;

/// Packs `indices` (each `< 2^bits`) into a new bit stream.
pub fn pack(indices: &[u8], bits: u8) -> Result<Vec<u8>> {
    Ok(codebook::pack(indices, bits)?)
}

/// Packs `indices` into `out`, which must be exactly
/// [`packed_len`]`(indices.len(), bits)` bytes long.
pub fn pack_into(indices: &[u8], bits: u8, out: &mut [u8]) -> Result<()> {
    Ok(codebook::pack_into(indices, bits, out)?)
}

/// Unpacks `len` indices of `bits` bits from `packed`, which must be exactly
/// [`packed_len`]`(len, bits)` bytes long.
pub fn unpack(packed: &[u8], bits: u8, len: usize) -> Result<Vec<u8>> {
    Ok(codebook::unpack(packed, bits, len)?)
}

/// Unpacks `out.len()` indices from `packed` into `out`.
pub fn unpack_into(packed: &[u8], bits: u8, out: &mut [u8]) -> Result<()> {
    Ok(codebook::unpack_into(packed, bits, out)?)
}
