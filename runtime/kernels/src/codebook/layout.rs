//! The codebook format as the kernels see it (docs/codebook-format.md): a
//! validated view of one quantized `[N, K]` matrix, and the walk over a row's
//! *segments* — the runs of consecutive weights of one row that share one
//! codebook. Every kernel, scalar or SIMD, works segment by segment: look the
//! codebook up once, then stream that run's index bytes.

use std::fmt;

use half::f16;

use ditto_contracts::codebook::{self, Format};

/// Index widths the format allows ([`codebook::SUPPORTED_BITS`], as the
/// kernels count them).
pub const SUPPORTED_BITS: [usize; 6] = {
    let b = codebook::SUPPORTED_BITS;
    [
        b[0] as usize,
        b[1] as usize,
        b[2] as usize,
        b[3] as usize,
        b[4] as usize,
        b[5] as usize,
    ]
};

/// A quantized matrix `Ŵ [N, K]` whose sizes have been checked against its
/// arrays: `indices` is the b-bit stream (`ceil(N·K·b/8)` bytes), `codebooks`
/// holds `ceil(N·K/B)` blocks of `2^b` f16 centroids.
#[derive(Clone, Copy)]
pub struct CbMatrix<'a> {
    n: usize,
    k: usize,
    bits: usize,
    block: usize,
    indices: &'a [u8],
    codebooks: &'a [f16],
}

impl fmt::Debug for CbMatrix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CbMatrix [{}, {}] b={} B={} ({} index bytes, {} codebook entries)",
            self.n,
            self.k,
            self.bits,
            self.block,
            self.indices.len(),
            self.codebooks.len()
        )
    }
}

/// Why a [`CbMatrix`] cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

impl<'a> CbMatrix<'a> {
    /// Checks the parameters (b ∈ {2,3,4,5,6,8}, B a positive multiple of 8,
    /// K·b a multiple of 8) and that both arrays have exactly the lengths
    /// the format gives them.
    pub fn new(
        n: usize,
        k: usize,
        bits: usize,
        block: usize,
        indices: &'a [u8],
        codebooks: &'a [f16],
    ) -> Result<CbMatrix<'a>, FormatError> {
        let fail = |what: String| Err(FormatError(format!("codebook matrix [{n}, {k}]: {what}")));
        let format = u8::try_from(bits)
            .map_err(|_| codebook::FormatError::UnsupportedBits { bits: bits as i128 })
            .and_then(|b| Format::new_or_empty(n, k, b, block));
        let format = match format {
            Ok(format) => format,
            Err(e) => return fail(e.to_string()),
        };
        if indices.len() != format.index_bytes() {
            return fail(format!(
                "{} index bytes, the format needs {}",
                indices.len(),
                format.index_bytes()
            ));
        }
        if codebooks.len() != format.codebook_len() {
            return fail(format!(
                "{} codebook entries, the format needs {} ({} blocks of {})",
                codebooks.len(),
                format.codebook_len(),
                format.blocks(),
                format.levels()
            ));
        }
        Ok(CbMatrix {
            n,
            k,
            bits,
            block,
            indices,
            codebooks,
        })
    }

    /// Rows N (outputs).
    pub fn n(&self) -> usize {
        self.n
    }
    /// Columns K (inputs).
    pub fn k(&self) -> usize {
        self.k
    }
    /// Index width b.
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// Weights per codebook B.
    pub fn block(&self) -> usize {
        self.block
    }
    /// The whole index bit stream.
    pub fn indices(&self) -> &'a [u8] {
        self.indices
    }
    /// All codebooks, block after block.
    pub fn codebooks(&self) -> &'a [f16] {
        self.codebooks
    }
    /// Bytes a product reads: indices plus codebooks.
    pub fn bytes(&self) -> usize {
        self.indices.len() + 2 * self.codebooks.len()
    }

    /// Block `j`'s `2^b` centroids.
    pub(crate) fn codebook(&self, j: usize) -> &'a [f16] {
        let levels = 1 << self.bits;
        &self.codebooks[j * levels..(j + 1) * levels]
    }

    /// The segments of row `row` over columns `k0..k1` (`k0·b` a multiple
    /// of 8, so that every segment starts on a byte), in order.
    pub(crate) fn segments(&self, row: usize, k0: usize, k1: usize) -> Segments<'a> {
        debug_assert!(
            row < self.n && k0 <= k1 && k1 <= self.k && (k0 * self.bits).is_multiple_of(8)
        );
        let row_start = row * self.k;
        let block = (row_start + k0) / self.block; // the one division per row
        Segments {
            m: *self,
            row_start,
            k: k0,
            k1,
            block,
        }
    }
}

/// A run of weights `Ŵ[row, k0 .. k0+len]` sharing one codebook.
///
/// `indices` starts at the run's first index byte and goes on to the end of
/// the whole stream: a SIMD kernel may read ahead past the run (never past
/// the stream) and ignore what it does not need.
pub(crate) struct Segment<'a> {
    pub k0: usize,
    pub len: usize,
    pub codebook: &'a [f16],
    pub indices: &'a [u8],
}

pub(crate) struct Segments<'a> {
    m: CbMatrix<'a>,
    /// n·K, the flat index of the row's first weight.
    row_start: usize,
    /// The next segment's first column and block.
    k: usize,
    block: usize,
    k1: usize,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    #[inline]
    fn next(&mut self) -> Option<Segment<'a>> {
        if self.k >= self.k1 {
            return None;
        }
        let flat = self.row_start + self.k; // i = n·K + k, in block `self.block`
        let block_end = (self.block + 1) * self.m.block - self.row_start; // as a column
        let end = self.k1.min(block_end);
        // flat is a row start, a block start (multiple of 8) or k0 (k0·b ≡ 0 mod 8).
        let byte = flat * self.m.bits / 8;
        let segment = Segment {
            k0: self.k,
            len: end - self.k,
            codebook: self.m.codebook(self.block),
            indices: &self.m.indices[byte..],
        };
        self.k = end;
        self.block += 1;
        Some(segment)
    }
}

/// The output update every kernel ends with, in one place so that every
/// path rounds the same way: `beta·y + alpha·s`, and `alpha·s` when
/// `beta = 0` (whatever `y` held, NaN included).
#[inline]
pub(crate) fn epilogue(s: f32, y: f32, alpha: f32, beta: f32) -> f32 {
    if beta == 0.0 {
        alpha * s
    } else {
        beta * y + alpha * s
    }
}

/// Sums `W` partial sums by halving: lane `l` += lane `l + w/2`, for
/// w = W, W/2, …, 2. This is the order in which the SIMD GEMV kernels
/// reduce their accumulator registers (the upper registers onto the lower,
/// then the upper half of a register onto its lower half), so the scalar
/// twin reproduces their results bit for bit.
#[inline]
pub(crate) fn reduce_halving<const W: usize>(mut acc: [f32; W]) -> f32 {
    let mut w = W;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0]
}

/// How many groups of `group` index bytes from the start of `indices` a
/// SIMD kernel can read in place, when group g's loads touch bytes
/// `[g·group, g·group + touched)` (they may read past the group, never past
/// the stream).
pub(crate) fn direct_groups(indices: &[u8], group: usize, touched: usize) -> usize {
    if indices.len() < touched {
        0
    } else {
        (indices.len() - touched) / group + 1
    }
}

/// The index bytes of a segment's weights `from .. from + n`, copied to the
/// front of `N` zeroed bytes, so that a SIMD kernel's loads of the last
/// few weights may read past them.
pub(crate) fn tail_bytes<const N: usize>(
    indices: &[u8],
    from: usize,
    n: usize,
    bits: usize,
) -> [u8; N] {
    let mut buf = [0u8; N];
    let (start, len) = (from * bits / 8, (n * bits).div_ceil(8));
    buf[..len].copy_from_slice(&indices[start..start + len]);
    buf
}
