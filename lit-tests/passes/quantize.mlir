// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-quantize{bits=3 block=64},ditto-verify)' | FileCheck %s
// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-quantize{bits=3 block=64},ditto-select-kernels)' | FileCheck %s --check-prefix=SELECT

// A weight used only as the matrix of a product becomes a codebook weight,
// dequantized into a scratch right before its use and freed after it; an
// embedding table read by a gather becomes one too, each element load a
// codebook.load of its row-major position. Kernel selection then fuses the
// dequantization into the product.
// CHECK-LABEL: func.func @quantize
// CHECK: %[[E:.*]]:2 = "codebook.weight"() {bits = 3 : i64, block = 64 : i64, name = "token_embd.weight"} : () -> (memref<48xi8>, memref<2x8xf16>)
// CHECK: %[[W:.*]]:2 = "codebook.weight"() {bits = 3 : i64, block = 64 : i64, name = "w"} : () -> (memref<12xi8>, memref<1x8xf16>)
// CHECK: %[[COL:.*]] = linalg.index 0 : index
// CHECK: %[[K:.*]] = arith.constant 8 : index
// CHECK: %[[START:.*]] = arith.muli %arg4, %[[K]] : index
// CHECK: %[[I:.*]] = arith.addi %[[START]], %[[COL]] : index
// CHECK: %[[V:.*]] = "codebook.load"(%[[E]]#0, %[[E]]#1, %[[I]]) {bits = 3 : i64, block = 64 : i64} : (memref<48xi8>, memref<2x8xf16>, index) -> f32
// CHECK: linalg.yield %[[V]] : f32
// CHECK: %[[S:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK-NEXT: "codebook.dequantize"(%[[W]]#0, %[[W]]#1, %[[S]]) {bits = 3 : i64, block = 64 : i64}
// CHECK-NEXT: linalg.generic {{.*}} ins(%[[S]], %arg1 : memref<4x8xf32>, memref<8xf32>)
// CHECK: memref.dealloc %[[S]]
// SELECT-LABEL: func.func @quantize
// SELECT: "codebook.gemv"(%{{.*}}#0, %{{.*}}#1, %arg1, %arg2) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, bits = 3 : i64, block = 64 : i64}
// SELECT-NOT: codebook.dequantize
func.func @quantize(%weights: memref<?xi8>, %x: memref<8xf32>, %y: memref<4xf32>, %row: memref<8xf32>, %token: index) {
  %emb = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<16x8xf32>
  %w = "ditto.weight"() {name = "w"} : () -> memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]} outs(%row : memref<8xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %e = memref.load %emb[%token, %i] : memref<16x8xf32>
    linalg.yield %e : f32
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%w, %x : memref<4x8xf32>, memref<8xf32>) outs(%y : memref<4xf32>) {
  ^bb0(%wv: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %wv, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A tied embedding: the same table gathered (the token's row) and used as the
// LM head's matrix. It becomes one codebook weight read both ways; the
// product fuses, the gather stays a codebook.load.
// CHECK-LABEL: func.func @tied
// CHECK: %[[E:.*]]:2 = "codebook.weight"() {bits = 3 : i64, block = 64 : i64, name = "token_embd.weight"} : () -> (memref<48xi8>, memref<2x8xf16>)
// CHECK: "codebook.load"(%[[E]]#0, %[[E]]#1, %{{.*}})
// CHECK: "codebook.dequantize"(%[[E]]#0, %[[E]]#1, %{{.*}})
// CHECK-NOT: ditto.weight
// SELECT-LABEL: func.func @tied
// SELECT: "codebook.load"
// SELECT: "codebook.gemv"(%{{.*}}#0, %{{.*}}#1, %arg1, %arg2)
func.func @tied(%weights: memref<?xi8>, %x: memref<8xf32>, %logits: memref<16xf32>, %row: memref<8xf32>, %token: index) {
  %emb = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<16x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]} outs(%row : memref<8xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %e = memref.load %emb[%token, %i] : memref<16x8xf32>
    linalg.yield %e : f32
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%logits : memref<16xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%emb, %x : memref<16x8xf32>, memref<8xf32>) outs(%logits : memref<16xf32>) {
  ^bb0(%wv: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %wv, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight also written to, or passed on, is not quantized anywhere.
// CHECK-LABEL: func.func @not_quantizable
// CHECK: "ditto.weight"() {name = "stored"} : () -> memref<4x8xf32>
// CHECK: "ditto.weight"() {name = "passed"} : () -> memref<4x8xf32>
// CHECK-NOT: codebook
func.func private @consume(memref<4x8xf32>)
func.func @not_quantizable(%x: memref<8xf32>, %y: memref<4xf32>, %v: f32, %r: index) {
  %s = "ditto.weight"() {name = "stored"} : () -> memref<4x8xf32>
  %p = "ditto.weight"() {name = "passed"} : () -> memref<4x8xf32>
  memref.store %v, %s[%r, %r] : memref<4x8xf32>
  call @consume(%p) : (memref<4x8xf32>) -> ()
  return
}
