// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-select-kernels)' | FileCheck %s
// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-select-kernels{codebook-kernels=dequantize})' | FileCheck %s --check-prefix=DITTO

// A GEMV whose matrix was dequantized from codebooks: by default a fused
// codebook kernel replaces both the dequantization and the product; with
// Ditto's recipe the dequantization stays and BLIS runs on the f32 scratch.
// CHECK-LABEL: func.func @codebook_gemv
// CHECK-NOT: codebook.dequantize
// CHECK: "codebook.gemv"(%arg0, %arg1, %arg2, %arg3) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, bits = 4 : i64, block = 256 : i64}
// CHECK-NOT: linalg.generic
// DITTO-LABEL: func.func @codebook_gemv
// DITTO: %[[W:.*]] = memref.alloca() : memref<8x4xf32>
// DITTO: "codebook.dequantize"(%arg0, %arg1, %[[W]])
// DITTO: "ditto.gemv"(%[[W]], %arg2, %arg3) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, transpose_a = false}
func.func @codebook_gemv(%q: memref<16xi8>, %cb: memref<1x16xf16>, %x: memref<4xf32>, %y: memref<8xf32>) {
  %w = memref.alloca() : memref<8x4xf32>
  "codebook.dequantize"(%q, %cb, %w) {bits = 4 : i64, block = 256 : i64} : (memref<16xi8>, memref<1x16xf16>, memref<8x4xf32>) -> ()
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%w, %x : memref<8x4xf32>, memref<4xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%wv: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %wv, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The prefill projection X·Ŵᵀ with a residual add, both paths.
// CHECK-LABEL: func.func @codebook_gemm_residual
// CHECK: "codebook.gemm"(%arg0, %arg1, %arg2, %arg3) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, bits = 3 : i64, block = 64 : i64}
// CHECK-NOT: linalg.generic
// DITTO-LABEL: func.func @codebook_gemm_residual
// DITTO: "codebook.dequantize"
// DITTO: "ditto.gemm"(%arg2, %{{.*}}, %arg3) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, transpose_a = false, transpose_b = true}
func.func @codebook_gemm_residual(%q: memref<48xi8>, %cb: memref<2x8xf16>, %x: memref<?x16xf32>, %res: memref<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %rows = memref.dim %x, %c0 : memref<?x16xf32>
  %w = memref.alloc() : memref<8x16xf32>
  "codebook.dequantize"(%q, %cb, %w) {bits = 3 : i64, block = 64 : i64} : (memref<48xi8>, memref<2x8xf16>, memref<8x16xf32>) -> ()
  %t = memref.alloc(%rows) : memref<?x8xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%t : memref<?x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x16xf32>, memref<8x16xf32>) outs(%t : memref<?x8xf32>) {
  ^bb0(%xv: f32, %wv: f32, %acc: f32):
    %p = arith.mulf %xv, %wv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]}
      ins(%t : memref<?x8xf32>) outs(%res : memref<?x8xf32>) {
  ^bb0(%tv: f32, %out: f32):
    %s = arith.addf %out, %tv : f32
    linalg.yield %s : f32
  }
  memref.dealloc %t : memref<?x8xf32>
  memref.dealloc %w : memref<8x16xf32>
  return
}
