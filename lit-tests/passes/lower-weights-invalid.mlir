// RUN: %ditto-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ditto-lower-weights)'

// A pass error is a diagnostic on the op it concerns, checked here by MLIR's
// own --verify-diagnostics.
func.func @no_blob(%x: memref<4xf32>) {
  // expected-error @+1 {{ditto.weight needs its function's first argument to be the weight blob `memref<?xi8>`}}
  %a = "ditto.weight"() {name = "a"} : () -> memref<3x5xf32>
  return
}

// -----

// expected-error @+1 {{ditto.weight outside a function}}
%a = "ditto.weight"() {name = "a"} : () -> memref<3x5xf32>
