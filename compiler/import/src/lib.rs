//! dittoc import: Hugging Face and GGUF checkpoints to model.mlir + sidecars
