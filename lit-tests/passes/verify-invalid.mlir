// RUN: %ditto-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ditto-verify)'

func.func @weight_name_not_a_string() {
  // expected-error @+1 {{expected base attribute 'builtin.string'}}
  %w = "ditto.weight"() {name = 3 : i64} : () -> memref<2xf32>
  return
}

// -----

func.func @weight_not_f32() {
  // expected-error @+1 {{ditto.weight must produce a statically shaped memref of f32}}
  %w = "ditto.weight"() {name = "w"} : () -> memref<2xf16>
  return
}

// -----

func.func @gemv_shapes_disagree(%a: memref<8x4xf32>, %x: memref<5xf32>, %y: memref<8xf32>) {
  // expected-error @+1 {{the columns of op(a) and the length of x do not agree (4 vs 5)}}
  "ditto.gemv"(%a, %x, %y) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false} : (memref<8x4xf32>, memref<5xf32>, memref<8xf32>) -> ()
  return
}

// -----

func.func @gemv_wrong_rank(%a: memref<8xf32>, %x: memref<4xf32>, %y: memref<8xf32>) {
  // expected-error @+1 {{operand `a` must have rank 2}}
  "ditto.gemv"(%a, %x, %y) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false} : (memref<8xf32>, memref<4xf32>, memref<8xf32>) -> ()
  return
}

// -----

func.func @gemm_inner_dims(%a: memref<3x4xf32>, %b: memref<8x5xf32>, %c: memref<3x8xf32>) {
  // expected-error @+1 {{the inner dimensions of op(a) and op(b) do not agree (4 vs 5)}}
  "ditto.gemm"(%a, %b, %c) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false, transpose_b = true} : (memref<3x4xf32>, memref<8x5xf32>, memref<3x8xf32>) -> ()
  return
}

// -----

func.func @gemv_transpose_not_bool(%a: memref<8x4xf32>, %x: memref<4xf32>, %y: memref<8xf32>) {
  // expected-error @+1 {{does not satisfy the constraint}}
  "ditto.gemv"(%a, %x, %y) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = 1 : i32} : (memref<8x4xf32>, memref<4xf32>, memref<8xf32>) -> ()
  return
}
