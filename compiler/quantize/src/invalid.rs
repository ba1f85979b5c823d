//! The one error type of the crate: every way a caller's input can be
//! rejected, each message naming the parameter and the value at fault.

/// Invalid input to the quantizer, the packer, the error measurement or the
/// bit allocation. Nothing in this crate panics on bad input; it returns one
/// of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    /// `bits` is not one of the widths the codebook format allows.
    #[error(
        "unsupported index width: bits = {bits} (the codebook format allows 2, 3, 4, 5, 6, 8)"
    )]
    UnsupportedBits { bits: u8 },

    /// The block length is zero or not a multiple of 8.
    #[error("invalid block length {block}: it must be a positive multiple of 8")]
    BadBlock { block: usize },

    /// A block too long for the quantizer, which keys a weight's position in
    /// its block by 32 bits.
    #[error(
        "block length {block} is too large for the quantizer (at most {max} weights per codebook)"
    )]
    BlockTooLarge { block: usize, max: usize },

    /// `K · bits` is not a multiple of 8, so rows would not start on a byte.
    #[error("K = {k} with bits = {bits}: K·bits = {} is not a multiple of 8, so rows would not start on a byte", .k * *.bits as usize)]
    RowNotByteAligned { k: usize, bits: u8 },

    /// A zero dimension or a shape whose element count overflows.
    #[error(
        "invalid shape [{n}, {k}]: both dimensions must be positive and N·K must fit in memory"
    )]
    BadShape { n: usize, k: usize },

    /// A slice whose length disagrees with the shape or format.
    #[error("{what}: expected {expected} elements, found {found}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },

    /// A weight that is NaN or infinite.
    #[error("weight {index} (row {row}, column {col}) is not finite: {value}")]
    NonFiniteWeight {
        index: usize,
        row: usize,
        col: usize,
        value: f32,
    },

    /// A weight outside the finite range of f16, which the codebooks use.
    #[error("weight {index} (row {row}, column {col}) = {value} is outside the f16 range ±65504 of the codebooks")]
    WeightOutOfF16Range {
        index: usize,
        row: usize,
        col: usize,
        value: f32,
    },

    /// An importance (calibration statistic) that is negative, NaN or infinite.
    #[error(
        "importance of input channel {channel} is {value}: importances must be finite and ≥ 0"
    )]
    BadImportance { channel: usize, value: f32 },

    /// A calibration activation that is NaN or infinite.
    #[error("calibration activation {index} (sample {sample}, channel {channel}) is not finite: {value}")]
    NonFiniteActivation {
        index: usize,
        sample: usize,
        channel: usize,
        value: f32,
    },

    /// A calibration Hessian (XᵀX) the error-compensating rounding cannot use.
    #[error("calibration XᵀX: {reason}")]
    BadHessian { reason: String },

    /// An index that does not fit in `bits` bits.
    #[error("index {value} at position {position} does not fit in {bits} bits (maximum {})", (1u32 << *.bits) - 1)]
    IndexOutOfRange {
        position: usize,
        value: u8,
        bits: u8,
    },

    /// A row index past the last row.
    #[error("row {row} is out of range: the tensor has {rows} rows")]
    RowOutOfRange { row: usize, rows: usize },

    /// A tensor handed to the bit allocation with no candidate to choose from.
    #[error("tensor `{tensor}` has no candidate quantization to choose from")]
    NoCandidates { tensor: String },

    /// A per-tensor override whose pattern names no tensor (a typo would
    /// otherwise be ignored silently).
    #[error("--tensor-bits pattern `{pattern}` matches no quantized tensor")]
    UnmatchedOverride { pattern: String },

    /// A bound that is not a positive finite number.
    #[error("invalid bound {name} = {value}: it must be a positive finite number")]
    BadBound { name: &'static str, value: f64 },

    /// A bits-per-weight budget below what the cheapest candidates need.
    #[error("budget of {bits_avg} bits per weight is infeasible: the cheapest candidates need {minimum:.4} bits per weight")]
    InfeasibleBudget { bits_avg: f64, minimum: f64 },

    /// A candidate error that is NaN or negative.
    #[error("tensor `{tensor}`: candidate with bits = {bits}, block = {block} has invalid error {error}")]
    BadCandidateError {
        tensor: String,
        bits: u8,
        block: usize,
        error: f64,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = QuantizeError> = std::result::Result<T, E>;

/// `Ok` if `found == expected`, else [`QuantizeError::LengthMismatch`].
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantizeError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}
