// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-lower-weights)' | FileCheck %s
// RUN: %ditto-opt %s --pass-pipeline='builtin.module(ditto-lower-weights)' --mlir-print-ir-after-all 2>&1 >/dev/null | FileCheck %s --check-prefix=DUMP

// Weights become views of the blob (the function's first argument), 64-byte
// aligned in order of first use; a weight used twice keeps one offset. The
// offsets are recorded on the module (dittoc checks the payload against
// them).
// CHECK: module attributes {ditto.weight_layout = {{\[}}["a", 0], ["b", 64]]}
// CHECK-LABEL: func.func @weights
// CHECK: %[[O0:.*]] = arith.constant 0 : index
// CHECK: memref.view %arg0[%[[O0]]][] : memref<?xi8> to memref<3x5xf32>
// CHECK: %[[O1:.*]] = arith.constant 64 : index
// CHECK: memref.view %arg0[%[[O1]]][] : memref<?xi8> to memref<7xf32>
// CHECK: %[[O2:.*]] = arith.constant 0 : index
// CHECK: memref.view %arg0[%[[O2]]][] : memref<?xi8> to memref<3x5xf32>
// CHECK-NOT: ditto.weight
// MLIR's own IR printing names the pass as the registry does.
// DUMP: // -----// IR Dump After DittoLowerWeights (ditto-lower-weights) //----- //
// DUMP: memref.view
func.func @weights(%blob: memref<?xi8>) {
  %a = "ditto.weight"() {name = "a"} : () -> memref<3x5xf32>
  %b = "ditto.weight"() {name = "b"} : () -> memref<7xf32>
  %c = "ditto.weight"() {name = "a"} : () -> memref<3x5xf32>
  return
}
