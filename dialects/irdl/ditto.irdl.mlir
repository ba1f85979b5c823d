// The `ditto` dialect: weights of the model and the kernels the e-graph selects.
//
// IRDL cannot express what these ops also require (f32 elements, ranks, shapes
// that agree); the Rust pass `ditto-verify` checks those.
//
// Note on IRDL: a constraint value unifies across its uses, so every operand
// and attribute below has a constraint of its own.
irdl.dialect @ditto {
  // %w = "ditto.weight"() {name = "blk.0.attn_q.weight"} : () -> memref<896x896xf32>
  //
  // A tensor of the model's weight file, by name. Its bytes live in the
  // sidecar named by the module attribute `ditto.weights`, and later in the
  // executable's payload.
  irdl.operation @weight {
    %name = irdl.base "#builtin.string"
    %memref = irdl.base "!builtin.memref"
    irdl.attributes { "name" = %name }
    irdl.results(result: %memref)
  }

  // "ditto.gemv"(%a, %x, %y) {alpha, beta, transpose_a} : (memref<MxN>, memref<N>, memref<M>) -> ()
  //
  // y := beta * y + alpha * op(a) * x, where op(a) is a or its transpose.
  irdl.operation @gemv {
    %a = irdl.base "!builtin.memref"
    %x = irdl.base "!builtin.memref"
    %y = irdl.base "!builtin.memref"
    %alpha = irdl.base "#builtin.float"
    %beta = irdl.base "#builtin.float"
    %true = irdl.is true
    %false = irdl.is false
    %transpose_a = irdl.any_of(%true, %false)
    irdl.attributes { "alpha" = %alpha, "beta" = %beta, "transpose_a" = %transpose_a }
    irdl.operands(a: %a, x: %x, y: %y)
    irdl.results()
  }

  // "ditto.gemm"(%a, %b, %c) {alpha, beta, transpose_a, transpose_b} : (memref<..>, memref<..>, memref<MxN>) -> ()
  //
  // c := beta * c + alpha * op(a) * op(b), op(a) is MxK, op(b) is KxN.
  irdl.operation @gemm {
    %a = irdl.base "!builtin.memref"
    %b = irdl.base "!builtin.memref"
    %c = irdl.base "!builtin.memref"
    %alpha = irdl.base "#builtin.float"
    %beta = irdl.base "#builtin.float"
    %ta_true = irdl.is true
    %ta_false = irdl.is false
    %transpose_a = irdl.any_of(%ta_true, %ta_false)
    %tb_true = irdl.is true
    %tb_false = irdl.is false
    %transpose_b = irdl.any_of(%tb_true, %tb_false)
    irdl.attributes { "alpha" = %alpha, "beta" = %beta, "transpose_a" = %transpose_a, "transpose_b" = %transpose_b }
    irdl.operands(a: %a, b: %b, c: %c)
    irdl.results()
  }
}
