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

// -----

func.func @codebook_bits_not_supported() {
  // expected-error @+1 {{bits must be one of 2, 3, 4, 5, 6, 8, got 7}}
  %idx, %cb = "codebook.weight"() {name = "w", bits = 7 : i64, block = 256 : i64} : () -> (memref<1024xi8>, memref<8x128xf16>)
  return
}

// -----

func.func @codebook_size_not_two_to_the_bits(%idx: memref<1024xi8>, %cb: memref<8x15xf16>, %w: memref<32x64xf32>) {
  // expected-error @+1 {{codebook entries and 2^bits do not agree (15 vs 16)}}
  "codebook.dequantize"(%idx, %cb, %w) {bits = 4 : i64, block = 256 : i64} : (memref<1024xi8>, memref<8x15xf16>, memref<32x64xf32>) -> ()
  return
}

// -----

func.func @codebook_indices_do_not_fit(%idx: memref<1000xi8>, %cb: memref<8x16xf16>, %x: memref<64xf32>, %y: memref<32xf32>) {
  // expected-error @+1 {{index bytes and the tensor's size do not agree (1000 vs 1024)}}
  "codebook.gemv"(%idx, %cb, %x, %y) {bits = 4 : i64, block = 256 : i64, alpha = 1.0 : f32, beta = 0.0 : f32} : (memref<1000xi8>, memref<8x16xf16>, memref<64xf32>, memref<32xf32>) -> ()
  return
}

// -----

func.func @codebook_block_not_multiple_of_8(%idx: memref<1024xi8>, %cb: memref<683x16xf16>, %w: memref<32x64xf32>) {
  // expected-error @+1 {{block must be a positive multiple of 8, got 3}}
  "codebook.dequantize"(%idx, %cb, %w) {bits = 4 : i64, block = 3 : i64} : (memref<1024xi8>, memref<683x16xf16>, memref<32x64xf32>) -> ()
  return
}

// -----

func.func @codebook_shape_mismatch(%idx: memref<1024xi8>, %cb: memref<8x16xf16>, %x: memref<?x64xf32>, %c: memref<?x16xf32>) {
  // expected-error @+1 {{index bytes and the tensor's size do not agree (1024 vs 512)}}
  "codebook.gemm"(%idx, %cb, %x, %c) {bits = 4 : i64, block = 256 : i64, alpha = 1.0 : f32, beta = 0.0 : f32} : (memref<1024xi8>, memref<8x16xf16>, memref<?x64xf32>, memref<?x16xf32>) -> ()
  return
}

// -----

func.func @codebook_load_codebook_size(%idx: memref<40xi8>, %cb: memref<1x4xf16>, %i: index) -> f32 {
  // expected-error @+1 {{codebook entries and 2^bits do not agree (4 vs 8)}}
  %v = "codebook.load"(%idx, %cb, %i) {bits = 3 : i64, block = 128 : i64} : (memref<40xi8>, memref<1x4xf16>, index) -> f32
  return %v : f32
}

// -----

func.func @codebook_load_index_width(%idx: memref<40xi16>, %cb: memref<1x8xf16>, %i: index) -> f32 {
  // expected-error @+1 {{operand 0 must be a memref of i8, got memref<40xi16>}}
  %v = "codebook.load"(%idx, %cb, %i) {bits = 3 : i64, block = 128 : i64} : (memref<40xi16>, memref<1x8xf16>, index) -> f32
  return %v : f32
}

// -----

func.func @codebook_load_result_not_f32(%idx: memref<40xi8>, %cb: memref<1x8xf16>, %i: index) -> f16 {
  // expected-error @+1 {{expected 'f32' but got 'f16'}}
  %v = "codebook.load"(%idx, %cb, %i) {bits = 3 : i64, block = 128 : i64} : (memref<40xi8>, memref<1x8xf16>, index) -> f16
  return %v : f16
}
