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
//! - [`verify::verify`] (`ditto-verify`): what the IRDL definitions cannot
//!   express (f32 elements, ranks, agreeing shapes).

pub mod kernels;
pub mod lookup;
pub mod quantize;
pub mod rewrite;
pub mod select;
pub mod verify;
pub mod weights;

use ditto_ir::melior::ir::operation::{OperationLike, OperationRef};

/// A pass failure, with the location of the op it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PassError {
    pub message: String,
}

impl PassError {
    pub fn new(message: impl Into<String>) -> Self {
        PassError {
            message: message.into(),
        }
    }

    pub fn at(op: OperationRef, message: impl Into<String>) -> Self {
        PassError {
            message: format!("{}: {}", op.location(), message.into()),
        }
    }
}
