// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-select-kernels)' | FileCheck %s

// y[i] = Σ_k A[i,k]·x[k]: a GEMV in generic form.
// CHECK-LABEL: func.func @gemv
// CHECK-NOT: linalg.fill
// CHECK: "ditto.gemv"(%arg0, %arg1, %arg2) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, transpose_a = false}
// CHECK-NOT: linalg.generic
func.func @gemv(%a: memref<8x4xf32>, %x: memref<4xf32>, %y: memref<8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%a, %x : memref<8x4xf32>, memref<4xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%av: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %av, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The matrix stored transposed, the vector operand first: y[i] = Σ_k x[k]·A[k,i].
// CHECK-LABEL: func.func @gemv_transposed
// CHECK: "ditto.gemv"(%arg0, %arg1, %arg2) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, transpose_a = true}
// CHECK-NOT: linalg.generic
func.func @gemv_transposed(%a: memref<4x8xf32>, %x: memref<4xf32>, %y: memref<8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (k, i)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x, %a : memref<4xf32>, memref<4x8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%xv: f32, %av: f32, %acc: f32):
    %p = arith.mulf %xv, %av : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A bias epilogue: t = A·x into scratch, then y = t + b. The scratch buffer,
// its fill and both generics become one GEMV with beta 1 on a copy of b.
// CHECK-LABEL: func.func @gemv_bias
// CHECK: memref.copy %arg2, %arg3
// CHECK: "ditto.gemv"(%arg0, %arg1, %arg3) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, transpose_a = false}
// CHECK-NOT: linalg.generic
func.func @gemv_bias(%a: memref<8x4xf32>, %x: memref<4xf32>, %b: memref<8xf32>, %y: memref<8xf32>) {
  %zero = arith.constant 0.0 : f32
  %t = memref.alloca() : memref<8xf32>
  linalg.fill ins(%zero : f32) outs(%t : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%a, %x : memref<8x4xf32>, memref<4xf32>) outs(%t : memref<8xf32>) {
  ^bb0(%av: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %av, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
                  iterator_types = ["parallel"]}
      ins(%t, %b : memref<8xf32>, memref<8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%tv: f32, %bv: f32, %out: f32):
    %s = arith.addf %tv, %bv : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The bias added in place (y = A·x; y += b), as dittoc's importer writes it;
// the product's buffer is then read again (a view per head).
// CHECK-LABEL: func.func @gemv_bias_in_place
// CHECK: %[[Y:.*]] = memref.alloca() : memref<8xf32>
// CHECK-NEXT: memref.copy %arg2, %[[Y]]
// CHECK-NEXT: "ditto.gemv"(%arg0, %arg1, %[[Y]]) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, transpose_a = false}
// CHECK-NEXT: memref.expand_shape %[[Y]]
func.func @gemv_bias_in_place(%a: memref<8x4xf32>, %x: memref<4xf32>, %b: memref<8xf32>) -> memref<2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %y = memref.alloca() : memref<8xf32>
  linalg.fill ins(%zero : f32) outs(%y : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%a, %x : memref<8x4xf32>, memref<4xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%av: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %av, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%b : memref<8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%bv: f32, %out: f32):
    %s = arith.addf %out, %bv : f32
    linalg.yield %s : f32
  }
  %heads = memref.expand_shape %y [[0, 1]] output_shape [2, 4] : memref<8xf32> into memref<2x4xf32>
  return %heads : memref<2x4xf32>
}

// -----

// C[m,n] = Σ_k X[m,k]·W[n,k]: the prefill projection X·Wᵀ is a GEMM.
// CHECK-LABEL: func.func @gemm
// CHECK: "ditto.gemm"(%arg0, %arg1, %arg2) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, transpose_a = false, transpose_b = true}
// CHECK-NOT: linalg.generic
func.func @gemm(%x: memref<?x4xf32>, %w: memref<8x4xf32>, %c: memref<?x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<?x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x4xf32>, memref<8x4xf32>) outs(%c : memref<?x8xf32>) {
  ^bb0(%xv: f32, %wv: f32, %acc: f32):
    %p = arith.mulf %xv, %wv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A reduction that is not a GEMV (a sum of squares, as in RMSNorm) and one
// with a grouped-head index (attention scores) are left alone.
// CHECK-LABEL: func.func @not_a_gemv
// CHECK-NOT: ditto.gemv
// CHECK-NOT: ditto.gemm
// CHECK: linalg.generic
// CHECK: linalg.generic
func.func @not_a_gemv(%x: memref<8xf32>, %ss: memref<f32>, %q: memref<4x16xf32>, %k: memref<?x2x16xf32>, %scores: memref<4x?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> ()>], iterator_types = ["reduction"]}
      ins(%x : memref<8xf32>) outs(%ss : memref<f32>) {
  ^bb0(%xv: f32, %acc: f32):
    %sq = arith.mulf %xv, %xv : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(h, s, d) -> (h, d)>, affine_map<(h, s, d) -> (s, h floordiv 2, d)>, affine_map<(h, s, d) -> (h, s)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<4x16xf32>, memref<?x2x16xf32>) outs(%scores : memref<4x?xf32>) {
  ^bb0(%qv: f32, %kv: f32, %acc: f32):
    %p = arith.mulf %qv, %kv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
