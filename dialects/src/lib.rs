//! The project's MLIR dialects: IRDL definitions and typed builders
