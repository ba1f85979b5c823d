// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-select-kernels{rules=%S/../../examples/rules/example.rules})' | FileCheck %s
// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-select-kernels)' | FileCheck %s --check-prefix=BUILTIN

// Attention-style scores divided by a constant: S = Q·Kᵀ / 8. The built-in
// rules find the product (a GEMM into the scratch buffer) and leave the
// division as a loop; the user rule `peel-divide` of
// examples/rules/example.rules folds it into alpha = 1/8.
// CHECK-LABEL: func.func @scores
// CHECK: "ditto.gemm"(%arg0, %arg1, %arg2) {alpha = 1.250000e-01 : f32, beta = 0.000000e+00 : f32, transpose_a = false, transpose_b = true}
// CHECK-NOT: linalg.generic
// BUILTIN-LABEL: func.func @scores
// BUILTIN: "ditto.gemm"(%arg0, %arg1, %[[T:.*]]) {alpha = 1.000000e+00 : f32, beta = 0.000000e+00 : f32, transpose_a = false, transpose_b = true}
// BUILTIN: linalg.generic {{.*}} ins(%[[T]] : memref<6x9xf32>) outs(%arg2 : memref<6x9xf32>)
// BUILTIN: arith.divf
func.func @scores(%q: memref<6x16xf32>, %k: memref<9x16xf32>, %s: memref<6x9xf32>) {
  %zero = arith.constant 0.0 : f32
  %eight = arith.constant 8.0 : f32
  %t = memref.alloca() : memref<6x9xf32>
  linalg.fill ins(%zero : f32) outs(%t : memref<6x9xf32>)
  linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<6x16xf32>, memref<9x16xf32>) outs(%t : memref<6x9xf32>) {
  ^bb0(%qv: f32, %kv: f32, %acc: f32):
    %p = arith.mulf %qv, %kv : f32
    %sum = arith.addf %acc, %p : f32
    linalg.yield %sum : f32
  }
  linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]}
      ins(%t : memref<6x9xf32>) outs(%s : memref<6x9xf32>) {
  ^bb0(%tv: f32, %out: f32):
    %d = arith.divf %tv, %eight : f32
    linalg.yield %d : f32
  }
  return
}
