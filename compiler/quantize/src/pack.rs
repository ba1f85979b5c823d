//! Bit packing of codebook indices (docs/codebook-format.md, "Layout").
//!
//! The indices form one little-endian bit stream: index `i` occupies bits
//! `[i·b, (i+1)·b)`, and bit `t` of the stream is bit `t mod 8` of byte
//! `t / 8`. Eight b-bit indices therefore fill exactly `b` bytes, which is how
//! both directions work: eight indices at a time through a `u64`.

use crate::format::check_bits;
use crate::invalid::{check_len, QuantizeError, Result};

// Eight indices of the widest width fill one u64, the unit both directions
// work in.
const _: () = assert!(8 * 8 <= u64::BITS as usize);

/// Bytes that `len` indices of `bits` bits occupy: ⌈len·b / 8⌉.
pub fn packed_len(len: usize, bits: u8) -> usize {
    (len * bits as usize).div_ceil(8)
}

/// Packs `indices` (each `< 2^bits`) into a new bit stream.
pub fn pack(indices: &[u8], bits: u8) -> Result<Vec<u8>> {
    check_bits(bits)?;
    let mut out = vec![0u8; packed_len(indices.len(), bits)];
    pack_into(indices, bits, &mut out)?;
    Ok(out)
}

/// Packs `indices` into `out`, which must be exactly
/// [`packed_len`]`(indices.len(), bits)` bytes long.
pub fn pack_into(indices: &[u8], bits: u8, out: &mut [u8]) -> Result<()> {
    check_bits(bits)?;
    check_len("packed output", packed_len(indices.len(), bits), out.len())?;
    if let Some(position) = indices.iter().position(|&q| (q as u32) >> bits != 0) {
        return Err(QuantizeError::IndexOutOfRange {
            position,
            value: indices[position],
            bits,
        });
    }
    pack_unchecked(indices, bits, out);
    Ok(())
}

/// Unpacks `len` indices of `bits` bits from `packed`, which must be exactly
/// [`packed_len`]`(len, bits)` bytes long.
pub fn unpack(packed: &[u8], bits: u8, len: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    unpack_into(packed, bits, &mut out)?;
    Ok(out)
}

/// Unpacks `out.len()` indices from `packed` into `out`.
pub fn unpack_into(packed: &[u8], bits: u8, out: &mut [u8]) -> Result<()> {
    check_bits(bits)?;
    check_len("packed input", packed_len(out.len(), bits), packed.len())?;
    unpack_unchecked(packed, bits, out);
    Ok(())
}

/// [`pack_into`] without checks: `bits ≤ 8`, every index `< 2^bits`, and
/// `out.len() == packed_len(indices.len(), bits)`.
pub(crate) fn pack_unchecked(indices: &[u8], bits: u8, out: &mut [u8]) {
    let b = bits as usize;
    let mut groups = indices.chunks_exact(8);
    let mut bytes = out.chunks_exact_mut(b);
    for (group, dst) in (&mut groups).zip(&mut bytes) {
        let word = gather(group, b);
        dst.copy_from_slice(&word.to_le_bytes()[..b]);
    }
    let rest = groups.remainder();
    if !rest.is_empty() {
        let word = gather(rest, b);
        let tail = &mut out[indices.len() / 8 * b..];
        let n = tail.len();
        tail.copy_from_slice(&word.to_le_bytes()[..n]);
    }
}

/// [`unpack_into`] without checks.
pub(crate) fn unpack_unchecked(packed: &[u8], bits: u8, out: &mut [u8]) {
    let b = bits as usize;
    let mask = ((1u32 << bits) - 1) as u64;
    let full = out.len() / 8;
    let (head, rest) = out.split_at_mut(full * 8);
    for (group, src) in head.chunks_exact_mut(8).zip(packed.chunks_exact(b)) {
        let mut buf = [0u8; 8];
        buf[..b].copy_from_slice(src);
        let word = u64::from_le_bytes(buf);
        for (t, q) in group.iter_mut().enumerate() {
            *q = ((word >> (t * b)) & mask) as u8;
        }
    }
    if !rest.is_empty() {
        let src = &packed[full * b..];
        let mut buf = [0u8; 8];
        buf[..src.len()].copy_from_slice(src);
        let word = u64::from_le_bytes(buf);
        for (t, q) in rest.iter_mut().enumerate() {
            *q = ((word >> (t * b)) & mask) as u8;
        }
    }
}

/// Up to eight indices as one little-endian word: Σ_t q_t · 2^(t·b).
fn gather(group: &[u8], b: usize) -> u64 {
    group
        .iter()
        .enumerate()
        .fold(0u64, |w, (t, &q)| w | (q as u64) << (t * b))
}
