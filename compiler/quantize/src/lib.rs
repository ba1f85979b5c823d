//! Ditto-style weight quantization for dittoc: per-block weighted k-means
//! codebooks, bit-packed indices, measured error, and bit allocation across a
//! model's tensors.
//!
//! The layout produced is the one of `docs/codebook-format.md`: a `[N, K]`
//! tensor becomes `⌈N·K·b/8⌉` bytes of `b`-bit indices (a little-endian bit
//! stream) and `⌈N·K/B⌉` codebooks of `2^b` f16 centroids, one per `B`
//! consecutive weights in row-major order.
//!
//! ```
//! use ditto_quantize::{dequantize, quantize};
//! # fn main() -> Result<(), ditto_quantize::QuantizeError> {
//! let (n, k) = (4, 64);
//! let w: Vec<f32> = (0..n * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
//! let q = quantize(&w, n, k, None, 4, 64, 0)?;
//! assert_eq!(q.indices.len(), n * k * 4 / 8);
//! assert_eq!(q.codebooks.len(), (n * k / 64) * 16);
//! let w_hat = dequantize(&q)?;
//! # let _ = w_hat;
//! # Ok(()) }
//! ```

pub mod allocate;
pub mod error;
mod format;
pub mod gptq;
mod invalid;
pub mod kmeans;
mod model;
pub mod pack;
mod quantize;
mod quantized;
mod report;
mod rng;

pub use allocate::{
    allocate, ActiveBound, Allocation, Candidate, Constraints, Curve, ErrorKind, Measured, Override,
};
pub use error::{relative_output_error, weighted_weight_error, Activations};
pub use model::{measure_curve, quantize_model, ModelOptions, QuantizedModel, Tensor};
pub use report::{Report, TensorReport, Totals};

pub use format::{check_bits, Format, SUPPORTED_BITS};
pub use gptq::{round_compensated, Hessian};
pub use invalid::{QuantizeError, Result};
pub use kmeans::{weighted_kmeans_1d, Fit, KmeansOptions, Method, AUTO_EXACT_MAX_LEVELS};
pub use quantize::{quantize, quantize_with, MAX_BLOCK};
pub use quantized::{dequantize, Quantized};
