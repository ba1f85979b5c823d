//! dittoc's own passes over MLIR modules:
//!
//! - [`select::select_kernels`] (`ditto-select-kernels`): the e-graph stage;
//!   structured ops it recognizes become `ditto.gemv` / `ditto.gemm`.
//! - [`kernels::lower_kernels`] (`ditto-lower-kernels`): those ops become
//!   calls of the runtime.
//!   [`lookup::lower_loads`], part of it, turns `codebook.load` (a gather
//!   from a codebook weight) into arith and memref ops.
//! - [`weights::lower_weights`] (`ditto-lower-weights`): `ditto.weight`
//!   becomes a view of the weight blob at its payload offset.
//! - [`verify::verify`] (`ditto-verify`): the module against itself and the
//!   model contract ([`contract`]), and what the IRDL definitions cannot
//!   express (f32 elements, ranks, agreeing shapes).
//! - [`quantize::apply`] (`ditto-quantize{bits=N block=N}`): weights become
//!   codebook weights (the IR half of `dittoc quantize`).
//!
//! [`registry::register`] registers them with MLIR's pass registry, so that
//! MLIR's pipeline parser runs them like upstream passes.

pub mod contract;
pub mod kernels;
pub mod lookup;
pub mod quantize;
pub mod registry;
pub mod rewrite;
pub mod select;
pub mod types;
pub mod verify;
pub mod weights;

pub use ditto_ir::PassError;
