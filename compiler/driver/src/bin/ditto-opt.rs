//! ditto-opt — `mlir-opt` with dittoc's passes registered beside the upstream
//! ones and the project's dialects loaded:
//!
//!     ditto-opt input.mlir --pass-pipeline='builtin.module(ditto-select-kernels{codebook-kernels=dequantize},canonicalize)'
//!     ditto-opt input.mlir --split-input-file --verify-diagnostics
//!
//! Everything else is MLIR's own: the pipeline parser, pass options
//! (`ditto-quantize{bits=4 block=64}`), `--mlir-print-ir-after-all`,
//! `--verify-diagnostics`, `--help` (which lists dittoc's passes and their
//! options).

use std::process::ExitCode;

fn main() -> ExitCode {
    ditto_passes::registry::register();
    ditto_ir::pass::opt_main("ditto-opt: dittoc's and MLIR's passes on an MLIR file")
}
