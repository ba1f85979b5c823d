// RUN: %ditto-opt %s --split-input-file --pass-pipeline='builtin.module(ditto-lower-kernels)' | FileCheck %s

// CHECK-LABEL: func.func @gemv
// CHECK: %[[A:.*]] = memref.cast %arg0 : memref<8x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[X:.*]] = memref.cast %arg1 : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
// CHECK: %[[Y:.*]] = memref.cast %arg2 : memref<8xf32> to memref<?xf32, strided<[?], offset: ?>>
// CHECK: call @ditto_rt_gemv(%[[A]], %[[X]], %[[Y]], %{{.*}}, %{{.*}}, %{{.*}})
// CHECK: func.func private @ditto_rt_gemv({{.*}}) attributes {llvm.emit_c_interface}
func.func @gemv(%a: memref<8x4xf32>, %x: memref<4xf32>, %y: memref<8xf32>) {
  "ditto.gemv"(%a, %x, %y) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false} : (memref<8x4xf32>, memref<4xf32>, memref<8xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: func.func @gemm
// CHECK: call @ditto_rt_gemm({{.*}}) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, f32, f32, i64, i64) -> ()
// CHECK: func.func private @ditto_rt_gemm
func.func @gemm(%a: memref<?x4xf32>, %b: memref<8x4xf32>, %c: memref<?x8xf32>) {
  "ditto.gemm"(%a, %b, %c) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false, transpose_b = true} : (memref<?x4xf32>, memref<8x4xf32>, memref<?x8xf32>) -> ()
  return
}
