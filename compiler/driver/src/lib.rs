//! The dittoc and ditto-opt command-line drivers
