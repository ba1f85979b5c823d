//! Lowering to the LLVM dialect, LLVM IR, object emission, linking with the runtime
