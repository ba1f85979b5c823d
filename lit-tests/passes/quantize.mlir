// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-quantize{bits=3 block=64},ditto-verify)' | FileCheck %s
// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-quantize{bits=3 block=64},ditto-select-kernels)' | FileCheck %s --check-prefix=SELECT

// A weight used only as the matrix of a product becomes a codebook weight,
// dequantized into a scratch right before its use and freed after it; the
// embedding table, also read by a gather, stays f32. Kernel selection then
// fuses the dequantization into the product.
// CHECK-LABEL: func.func @quantize
// CHECK: %[[E:.*]] = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<16x8xf32>
// CHECK: %[[W:.*]]:2 = "codebook.weight"() {bits = 3 : i64, block = 64 : i64, name = "w"} : () -> (memref<12xi8>, memref<1x8xf16>)
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
