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

// -----

// codebook.load: the index's bits from the stream (two bytes, the second
// clamped to the last), shifted and masked, then the f16 entry of its block.
// CHECK-LABEL: func.func @codebook_load
// CHECK: %[[C5:.*]] = arith.constant 5 : index
// CHECK: %[[BIT:.*]] = arith.muli %arg2, %[[C5]] : index
// CHECK: %[[BYTE:.*]] = arith.shrui %[[BIT]], %{{.*}} : index
// CHECK: %[[LEN:.*]] = memref.dim %arg0, %{{.*}} : memref<80xi8>
// CHECK: %[[LAST:.*]] = arith.subi %[[LEN]], %{{.*}} : index
// CHECK: %[[AFTER:.*]] = arith.addi %[[BYTE]], %{{.*}} : index
// CHECK: %[[NEXT:.*]] = arith.minui %[[AFTER]], %[[LAST]] : index
// CHECK: %[[B0:.*]] = memref.load %arg0[%[[BYTE]]] : memref<80xi8>
// CHECK: %[[W0:.*]] = arith.extui %[[B0]] : i8 to i32
// CHECK: %[[B1:.*]] = memref.load %arg0[%[[NEXT]]] : memref<80xi8>
// CHECK: %[[W1:.*]] = arith.extui %[[B1]] : i8 to i32
// CHECK: %[[HIGH:.*]] = arith.shli %[[W1]], %{{.*}} : i32
// CHECK: %[[WORD:.*]] = arith.ori %[[W0]], %[[HIGH]] : i32
// CHECK: %[[SHIFT:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK: %[[SHIFTED:.*]] = arith.shrui %[[WORD]], %[[SHIFT]] : i32
// CHECK: %[[MASK:.*]] = arith.constant 31 : i32
// CHECK: %[[CODE:.*]] = arith.andi %[[SHIFTED]], %[[MASK]] : i32
// CHECK: %[[ENTRY:.*]] = arith.index_cast %[[CODE]] : i32 to index
// CHECK: %[[BLOCK:.*]] = arith.constant 64 : index
// CHECK: %[[CB:.*]] = arith.divui %arg2, %[[BLOCK]] : index
// CHECK: %[[HALF:.*]] = memref.load %arg1[%[[CB]], %[[ENTRY]]] : memref<2x32xf16>
// CHECK: %[[V:.*]] = arith.extf %[[HALF]] : f16 to f32
// CHECK: return %[[V]] : f32
// CHECK-NOT: codebook.load
func.func @codebook_load(%idx: memref<80xi8>, %cb: memref<2x32xf16>, %i: index) -> f32 {
  %v = "codebook.load"(%idx, %cb, %i) {bits = 5 : i64, block = 64 : i64} : (memref<80xi8>, memref<2x32xf16>, index) -> f32
  return %v : f32
}
