//! dittoc's own MLIR passes: weight lowering, e-graph kernel selection, kernel lowering
