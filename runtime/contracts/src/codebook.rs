//! The codebook format (docs/codebook-format.md): the parameters of one
//! quantized `[N, K]` tensor, the sizes they imply, and the index bit stream.
//!
//! A tensor is `⌈N·K·b/8⌉` bytes of `b`-bit indices and `⌈N·K/B⌉` codebooks
//! of `2^b` f16 centroids, one per `B` consecutive weights in row-major
//! order. The indices form one little-endian bit stream: index `i` occupies
//! bits `[i·b, (i+1)·b)`, and bit `t` of the stream is bit `t mod 8` of byte
//! `t / 8`. Eight b-bit indices therefore fill exactly `b` bytes, which is
//! how both directions of the packing work: eight indices at a time through
//! a `u64`.
//!
//! The quantizer writes this format, the verifier checks modules against it,
//! and the kernels read it: each through [`Format`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Index widths the format allows.
pub const SUPPORTED_BITS: [u8; 6] = [2, 3, 4, 5, 6, 8];

/// Bytes of one codebook entry (an IEEE binary16).
pub const CODEBOOK_ENTRY_BYTES: usize = 2;

// Indices are stored in `u8`: the widest width must fit.
const _: () = assert!(SUPPORTED_BITS[SUPPORTED_BITS.len() - 1] <= 8);
// Eight indices of the widest width fill one u64, the unit the packing works in.
const _: () = assert!(8 * 8 <= u64::BITS as usize);

/// Why parameters or arrays do not form a valid codebook tensor. The
/// messages name the parameter and the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// `bits` is not one of [`SUPPORTED_BITS`].
    UnsupportedBits { bits: i128 },
    /// The block length is zero or not a multiple of 8.
    BadBlock { block: i128 },
    /// A zero dimension, or a shape whose bit count overflows.
    BadShape { n: usize, k: usize },
    /// `K · bits` is not a multiple of 8, so rows would not start on a byte.
    RowNotByteAligned { k: usize, bits: u8 },
    /// An array whose length disagrees with the format.
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// An index that does not fit in `bits` bits.
    IndexOutOfRange {
        position: usize,
        value: u8,
        bits: u8,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::UnsupportedBits { bits } => write!(
                f,
                "unsupported index width: bits = {bits} (the codebook format allows 2, 3, 4, 5, 6, 8)"
            ),
            FormatError::BadBlock { block } => write!(
                f,
                "invalid block length {block}: it must be a positive multiple of 8"
            ),
            FormatError::BadShape { n, k } => write!(
                f,
                "invalid shape [{n}, {k}]: both dimensions must be positive and N·K must fit in memory"
            ),
            FormatError::RowNotByteAligned { k, bits } => write!(
                f,
                "K = {k} with bits = {bits}: K·bits = {} is not a multiple of 8, so rows would not start on a byte",
                k * bits as usize
            ),
            FormatError::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected {expected} elements, found {found}"),
            FormatError::IndexOutOfRange {
                position,
                value,
                bits,
            } => write!(
                f,
                "index {value} at position {position} does not fit in {bits} bits (maximum {})",
                (1u32 << bits) - 1
            ),
        }
    }
}

impl std::error::Error for FormatError {}

/// Checks that `bits` is one of [`SUPPORTED_BITS`].
pub fn check_bits(bits: u8) -> Result<(), FormatError> {
    check_bits_i64(bits.into()).map(|_| ())
}

/// Checks a width given as a signed integer (an attribute's value) and
/// returns it as the format's `u8`.
pub fn check_bits_i64(bits: i64) -> Result<u8, FormatError> {
    match u8::try_from(bits) {
        Ok(b) if SUPPORTED_BITS.contains(&b) => Ok(b),
        _ => Err(FormatError::UnsupportedBits { bits: bits.into() }),
    }
}

/// Checks that `block` is a positive multiple of 8.
pub fn check_block(block: usize) -> Result<(), FormatError> {
    if block > 0 && block.is_multiple_of(8) {
        Ok(())
    } else {
        Err(FormatError::BadBlock {
            block: block as i128,
        })
    }
}

/// Checks a block length given as a signed integer (an attribute's value)
/// and returns it as a `usize`.
pub fn check_block_i64(block: i64) -> Result<usize, FormatError> {
    match usize::try_from(block) {
        Ok(b) if b > 0 && b.is_multiple_of(8) => Ok(b),
        _ => Err(FormatError::BadBlock {
            block: block.into(),
        }),
    }
}

/// `Ok` if `found == expected`, else [`FormatError::LengthMismatch`].
pub fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), FormatError> {
    if expected == found {
        Ok(())
    } else {
        Err(FormatError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// The validated parameters of one quantized `[N, K]` tensor: `bits`-bit
/// indices into per-block codebooks of `2^bits` f16 centroids, one codebook
/// per `block` consecutive weights in row-major order.
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
    /// 8, N, K > 0 with N·K·8 representable, and K·b a multiple of 8.
    pub fn new(n: usize, k: usize, bits: u8, block: usize) -> Result<Self, FormatError> {
        Self::checked(n, k, bits, block, false)
    }

    /// [`Format::new`], but N or K may be 0: the view a kernel takes of an
    /// empty product (no index bytes, no codebooks).
    pub fn new_or_empty(n: usize, k: usize, bits: u8, block: usize) -> Result<Self, FormatError> {
        Self::checked(n, k, bits, block, true)
    }

    fn checked(
        n: usize,
        k: usize,
        bits: u8,
        block: usize,
        allow_empty: bool,
    ) -> Result<Self, FormatError> {
        check_bits(bits)?;
        check_block(block)?;
        let elems = n.checked_mul(k).filter(|&e| allow_empty || e > 0);
        if elems.and_then(|e| e.checked_mul(8)).is_none() {
            return Err(FormatError::BadShape { n, k });
        }
        if !(k * bits as usize).is_multiple_of(8) {
            return Err(FormatError::RowNotByteAligned { k, bits });
        }
        Ok(Self { n, k, bits, block })
    }

    /// Checks that `indices` and `codebook_entries` have exactly the lengths
    /// the format gives them.
    pub fn check_arrays(&self, indices: usize, codebook_entries: usize) -> Result<(), FormatError> {
        check_len("index bytes", self.index_bytes(), indices)?;
        check_len("codebook entries", self.codebook_len(), codebook_entries)
    }

    /// N·K.
    pub fn len(&self) -> usize {
        self.n * self.k
    }

    /// Whether N·K = 0 (only from [`Format::new_or_empty`]).
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
        packed_len(self.len(), self.bits)
    }

    /// ⌈N·K / B⌉ · 2^b, the number of f16 codebook entries.
    pub fn codebook_len(&self) -> usize {
        self.blocks() * self.levels()
    }

    /// Bytes of the codebooks.
    pub fn codebook_bytes(&self) -> usize {
        CODEBOOK_ENTRY_BYTES * self.codebook_len()
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

/// Bytes that `len` indices of `bits` bits occupy: ⌈len·b / 8⌉.
pub fn packed_len(len: usize, bits: u8) -> usize {
    (len * bits as usize).div_ceil(8)
}

/// Packs `indices` (each `< 2^bits`) into a new bit stream.
pub fn pack(indices: &[u8], bits: u8) -> Result<Vec<u8>, FormatError> {
    check_bits(bits)?;
    let mut out = vec![0u8; packed_len(indices.len(), bits)];
    pack_into(indices, bits, &mut out)?;
    Ok(out)
}

/// Packs `indices` into `out`, which must be exactly
/// [`packed_len`]`(indices.len(), bits)` bytes long.
pub fn pack_into(indices: &[u8], bits: u8, out: &mut [u8]) -> Result<(), FormatError> {
    check_bits(bits)?;
    check_len("packed output", packed_len(indices.len(), bits), out.len())?;
    if let Some(position) = indices.iter().position(|&q| (q as u32) >> bits != 0) {
        return Err(FormatError::IndexOutOfRange {
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
pub fn unpack(packed: &[u8], bits: u8, len: usize) -> Result<Vec<u8>, FormatError> {
    let mut out = vec![0u8; len];
    unpack_into(packed, bits, &mut out)?;
    Ok(out)
}

/// Unpacks `out.len()` indices from `packed` into `out`.
pub fn unpack_into(packed: &[u8], bits: u8, out: &mut [u8]) -> Result<(), FormatError> {
    check_bits(bits)?;
    check_len("packed input", packed_len(out.len(), bits), packed.len())?;
    unpack_unchecked(packed, bits, out);
    Ok(())
}

/// [`pack_into`] without checks: `bits ≤ 8`, every index `< 2^bits`, and
/// `out.len() == packed_len(indices.len(), bits)`.
pub fn pack_unchecked(indices: &[u8], bits: u8, out: &mut [u8]) {
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
pub fn unpack_unchecked(packed: &[u8], bits: u8, out: &mut [u8]) {
    let b = bits as usize;
    let full = out.len() / 8;
    let (head, rest) = out.split_at_mut(full * 8);
    for (group, src) in head.chunks_exact_mut(8).zip(packed.chunks_exact(b)) {
        group.copy_from_slice(&unpack8(src, b));
    }
    if !rest.is_empty() {
        let n = rest.len();
        rest.copy_from_slice(&unpack8(&packed[full * b..], b)[..n]);
    }
}

/// Eight `b`-bit indices from the front of `bytes` (fewer bytes at the end
/// of the stream are zero-extended): the stream read as a little-endian
/// integer, index `t` at bits `[t·b, (t+1)·b)`.
#[inline]
pub fn unpack8(bytes: &[u8], bits: usize) -> [u8; 8] {
    let mut buf = [0u8; 8];
    let n = bits.min(bytes.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    let word = u64::from_le_bytes(buf);
    let mask = (1u64 << bits) - 1;
    std::array::from_fn(|t| ((word >> (t * bits)) & mask) as u8)
}

/// Up to eight indices as one little-endian word: Σ_t q_t · 2^(t·b).
fn gather(group: &[u8], b: usize) -> u64 {
    group
        .iter()
        .enumerate()
        .fold(0u64, |w, (t, &q)| w | (q as u64) << (t * b))
}
