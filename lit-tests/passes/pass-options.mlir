// dittoc's passes take their options in MLIR's syntax, and MLIR's pipeline
// parser reports a bad one, with the pass's own message for a bad value.
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-quantize{bits=7})' 2>&1 | FileCheck %s --check-prefix=BITS
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-quantize{block=0})' 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-quantize{bitz=4})' 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-select-kernels{codebook-kernels=fast})' 2>&1 | FileCheck %s --check-prefix=KERNELS
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-select-kernels{rules=%t.missing.rules})' 2>&1 | FileCheck %s --check-prefix=RULES
// RUN: not %ditto-opt %s --pass-pipeline='builtin.module(ditto-no-such-pass)' 2>&1 | FileCheck %s --check-prefix=PASS
// RUN: %ditto-opt --help | FileCheck %s --check-prefix=HELP

// BITS: error: ditto-quantize: bits: unsupported index width: bits = 7 (the codebook format allows 2, 3, 4, 5, 6, 8)
// BLOCK: error: ditto-quantize: block: invalid block length 0: it must be a positive multiple of 8
// UNKNOWN: no such option bitz
// KERNELS: error: ditto-select-kernels: codebook-kernels=fast: expected `fused` or `dequantize`
// RULES: error: cannot read rule file {{.*}}missing.rules
// PASS: 'ditto-no-such-pass' does not refer to a registered pass
// HELP: --ditto-quantize
// HELP-NEXT: --bits=<string> - Bits per index (2, 3, 4, 5, 6 or 8)
// HELP-NEXT: --block=<string> - Weights per codebook (a positive multiple of 8)
// HELP: --ditto-select-kernels
// HELP-NEXT: --codebook-kernels=<string> - How products with codebook matrices run

func.func @f() {
  return
}
