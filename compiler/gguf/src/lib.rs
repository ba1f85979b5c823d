//! GGUF reader for dittoc: metadata, tensor directory, dequantization to f32,
//! and conversion of GGUF tokenizer metadata to a Hugging Face
//! `tokenizer.json`.
//!
//! ```no_run
//! use ditto_gguf::GgufFile;
//! # fn main() -> Result<(), ditto_gguf::GgufError> {
//! let gguf = GgufFile::open("model.gguf")?;
//! let n_layers = gguf.arch_u32("block_count")?;
//! for t in gguf.tensors() {
//!     let values: Vec<f32> = gguf.dequantize(t)?; // row-major, shape t.shape()
//!     # let _ = (n_layers, values);
//! }
//! let tokenizer_json: String = ditto_gguf::tokenizer_json(&gguf)?;
//! let config = ditto_gguf::tokenizer_config(&gguf)?;
//! # let _ = (tokenizer_json, config);
//! # Ok(()) }
//! ```
//!
//! Files are memory-mapped; nothing but the header, metadata and tensor
//! directory is read at open. Malformed files give a [`GgufError`] that names
//! the path and the problem; the reader never panics on bad input.

mod dequant;
mod error;
mod file;
mod metadata;
mod reader;
mod tokenizer;
mod types;

pub use error::{GgufError, Result};
pub use file::{FromValue, GgufFile, TensorInfo, DEFAULT_ALIGNMENT};
pub use metadata::{Array, Value};
pub use tokenizer::{tokenizer_config, tokenizer_json, FimTokens, TokenizerConfig};
pub use types::GgmlType;
