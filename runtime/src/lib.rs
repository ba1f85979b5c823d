//! The runtime linked into every dittoc executable.
//!
//! The compiler emits the model's forward pass (three entry points, see
//! `docs/contracts.md` §3) and a `main` that calls [`entry::ditto_rt_main`].
//! Everything else an executable does lives here, one concern per module:
//!
//! | module | concern |
//! |---|---|
//! | [`entry`] | `ditto_rt_main`: the C boundary, exit codes, no panic escapes |
//! | [`cli`] | the command line (contracts.md §5) |
//! | [`calibrate`] | `--calibrate`: activation statistics of every weight matrix |
//! | [`app`] | one run: payload → tokenizer → prompt → prefill → decode loop |
//! | [`bench`] | `--measure-verify`: the cost c(k) of verifying k drafted tokens |
//! | [`datastores`] | the datastores baked in and of `--datastore`, checked against the tokenizer; `--spec` |
//! | [`payload`] | the model data appended to the executable (contracts.md §2) |
//! | [`tokenizer`] | prompt encoding and streaming detokenization |
//! | [`model`] | the generated entry points behind a safe wrapper |
//! | [`kv_cache`] | the key/value caches handed to the generated code |
//! | [`generate`] | prefill in chunks, the decode loop, prompt logits |
//! | [`sampler`] | greedy, temperature, top-k, top-p, seeded RNG |
//! | [`kernel_abi`] | the same kernels behind MLIR C-interface descriptors |
//! | [`gemv_f32`] | the streaming f32 GEMV (AVX-512, scalar twin) behind `sgemv` |
//! | [`kernels`] | `ditto_rt_sgemv` / `ditto_rt_sgemm` (contracts.md §4) over BLIS |
//! | [`blis`] | the bindings of the bundled BLIS, its integer-size check and kernel-set choice |
//! | [`pool`] | the one thread pool (`--threads`) the model runs in and the kernels split over |
//! | [`state`] | the process-wide switches and hooks the C adapters read, in one value |
//! | [`codebook`] | fused GEMV/GEMM on codebook-quantized weights (the `ditto-kernels` crate's kernels) over the pool, their C adapters |
//! | [`npy`] | the float32 `.npy` writer behind `--dump-logits` |

pub mod app;
pub mod bench;
pub mod blis;
pub mod calibrate;
pub mod cli;
pub mod codebook;
pub mod datastores;
pub mod entry;
pub mod error;
pub mod gemv_f32;
pub mod generate;
pub mod kernel_abi;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod npy;
pub mod payload;
pub mod pool;
pub mod sampler;
pub mod speculate;
pub mod state;
pub mod stop;
pub mod tokenizer;

pub use error::Error;
