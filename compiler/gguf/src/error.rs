//! The one error type of the crate. Every variant names the file it is about.

use std::path::PathBuf;

use crate::GgmlType;

/// Everything that can go wrong while reading a GGUF file, dequantizing one of
/// its tensors or converting its tokenizer. The `Display` form always starts
/// with the file's path, so a caller can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, measured or memory-mapped.
    #[error("{path}: cannot read file: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The first four bytes are not `GGUF`.
    #[error("{path}: not a GGUF file (magic bytes are {found:02x?}, expected \"GGUF\")", path = .path.display())]
    BadMagic { path: PathBuf, found: Vec<u8> },

    /// A GGUF version other than 2 or 3.
    #[error("{path}: unsupported GGUF version {version}{hint} (only versions 2 and 3 are supported)", path = .path.display(), hint = version_hint(*.version))]
    UnsupportedVersion { path: PathBuf, version: u32 },

    /// The file ends before something it declares.
    #[error("{path}: truncated file: {what} at byte offset {offset} needs {needed} bytes, but the {file_len}-byte file has {left} left", path = .path.display(), left = .file_len.saturating_sub(*.offset))]
    Truncated {
        path: PathBuf,
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },

    /// A metadata value type id that GGUF does not define.
    #[error("{path}: metadata key `{key}` has unknown value type id {type_id} (at byte offset {offset})", path = .path.display())]
    UnknownValueType {
        path: PathBuf,
        key: String,
        type_id: u32,
        offset: u64,
    },

    /// Anything else structurally wrong in the header, metadata or tensor
    /// directory (bad UTF-8, duplicate names, bad alignment, absurd dims...).
    #[error("{path}: malformed GGUF: {reason}", path = .path.display())]
    Malformed { path: PathBuf, reason: String },

    /// A tensor whose ggml type id this reader does not know.
    #[error("{path}: tensor `{tensor}` has unknown ggml type id {type_id}", path = .path.display())]
    UnknownGgmlType {
        path: PathBuf,
        tensor: String,
        type_id: u32,
    },

    /// A tensor's data range does not lie inside the file.
    #[error("{path}: tensor `{tensor}` data [{start}, {end}) lies outside the file ({file_len} bytes)", path = .path.display())]
    TensorOutOfBounds {
        path: PathBuf,
        tensor: String,
        start: u64,
        end: u64,
        file_len: u64,
    },

    /// The tensor's type is known, but cannot be dequantized by this crate.
    #[error("{path}: tensor `{tensor}` has type {ty}, which this reader cannot dequantize", path = .path.display())]
    UnsupportedType {
        path: PathBuf,
        tensor: String,
        ty: GgmlType,
    },

    /// A caller's output buffer does not have the tensor's element count.
    #[error("{path}: tensor `{tensor}` has {expected} elements, but the output buffer holds {actual}", path = .path.display())]
    BufferSize {
        path: PathBuf,
        tensor: String,
        expected: usize,
        actual: usize,
    },

    /// A requested tensor name is not in the file.
    #[error("{path}: no tensor named `{tensor}`", path = .path.display())]
    MissingTensor { path: PathBuf, tensor: String },

    /// A requested metadata key is not in the file.
    #[error("{path}: metadata key `{key}` is missing", path = .path.display())]
    MissingKey { path: PathBuf, key: String },

    /// A metadata key holds a value of another type than requested.
    #[error("{path}: metadata key `{key}` has type {actual}, expected {expected}", path = .path.display())]
    WrongKeyType {
        path: PathBuf,
        key: String,
        expected: String,
        actual: String,
    },

    /// The tokenizer model named by `tokenizer.ggml.model` cannot be converted.
    #[error("{path}: cannot convert tokenizer: {reason}", path = .path.display())]
    UnsupportedTokenizer { path: PathBuf, reason: String },

    /// The tokenizer metadata is inconsistent (e.g. array lengths differ).
    #[error("{path}: invalid tokenizer metadata: {reason}", path = .path.display())]
    InvalidTokenizer { path: PathBuf, reason: String },
}

fn version_hint(version: u32) -> &'static str {
    if version == 1 {
        " (GGUF v1 is obsolete)"
    } else if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
        " (this looks like a big-endian GGUF file, which is not supported)"
    } else {
        ""
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;
