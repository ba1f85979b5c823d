//! How a weight's arrays are named in a module's weight file
//! (docs/codebook-format.md). An f32 weight is one tensor under its own name
//! (`blk.0.attn_q.weight`); a codebook-quantized weight is two, its index
//! stream `NAME#indices` and its codebooks `NAME#codebooks`.

/// The suffix of a quantized weight's index stream.
pub const INDICES: &str = "#indices";
/// The suffix of a quantized weight's codebooks.
pub const CODEBOOKS: &str = "#codebooks";

/// Which array of a quantized weight a stored tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Indices,
    Codebooks,
}

impl Part {
    /// Both parts, in the order the `codebook.weight` op returns them.
    pub const ALL: [Part; 2] = [Part::Indices, Part::Codebooks];

    pub fn suffix(self) -> &'static str {
        match self {
            Part::Indices => INDICES,
            Part::Codebooks => CODEBOOKS,
        }
    }
}

/// The stored name of `part` of the quantized weight `weight`.
pub fn stored(weight: &str, part: Part) -> String {
    format!("{weight}{}", part.suffix())
}

/// The weight and part a stored name belongs to; `None` for an f32 weight.
pub fn split(stored: &str) -> Option<(&str, Part)> {
    Part::ALL
        .into_iter()
        .find_map(|part| stored.strip_suffix(part.suffix()).map(|w| (w, part)))
}
