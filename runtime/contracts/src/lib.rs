//! Every contract between `dittoc` and the executables it builds, in one
//! place (docs/contracts.md). The compiler writes each of them and the
//! runtime or the kernels read it: both sides use the definitions here, so a
//! contract changes in exactly one file.
//!
//! | module | contract | written by | read by |
//! |---|---|---|---|
//! | [`payload`] | the data appended to the executable, its manifest and trailer | `ditto-codegen` | `ditto-rt` |
//! | [`model`] | the model configuration: the module's `ditto.*` attributes and the manifest's `model` | `ditto-import` | `ditto-codegen`, `ditto-rt` |
//! | [`codebook`] | the codebook format: parameters, sizes and the index bit stream | `ditto-quantize` | `ditto-passes`, `ditto-kernels`, `ditto-rt` |
//! | [`tensor_names`] | how a quantized weight's arrays are named in a weight file | `dittoc quantize` | `ditto-passes` |
//! | [`kernel_abi`] | the runtime entry points the generated code calls | `ditto-passes` | `ditto-rt` |
//! | [`memref`] | MLIR's memref descriptor as `llvm.emit_c_interface` passes it | the generated code | `ditto-rt` |
//! | [`calibration`] | the activation statistics of `--calibrate` | `ditto-rt` | `dittoc quantize` |
//!
//! The crate depends on no MLIR or LLVM crate, so the kernels build and test
//! on any target with it.

pub mod calibration;
pub mod codebook;
pub mod kernel_abi;
pub mod memref;
pub mod model;
pub mod payload;
pub mod tensor_names;
