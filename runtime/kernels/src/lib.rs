//! The instruction-set-level kernels of the dittoc runtime (`ditto-rt`).
//!
//! Each kernel here computes one slice of a product on the calling thread:
//! no thread pool, no C interface, no BLIS, and no dependency but `half`,
//! so that this crate builds and tests on every target the kernels are
//! written for (x86-64 natively, aarch64 under qemu-user: see
//! `.cargo/config.toml` and `.ci/test`). `ditto-rt` splits the products
//! over its thread pool and puts the C adapters in front of them.
//!
//! | module | concern |
//! |---|---|
//! | [`codebook`] | GEMV/GEMM/dequantize on codebook-quantized weights: scalar, AVX2, AVX-512, NEON |

pub mod codebook;
