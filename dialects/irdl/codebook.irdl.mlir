// The `codebook` dialect: weights quantized with per-block k-means codebooks
// (docs/codebook-format.md), and the kernels that read them.
//
// IRDL cannot express what these ops also require — element types, that the
// index and codebook sizes agree with `bits`, `block` and the shapes, that
// bits ∈ {2,3,4,5,6,8} — the Rust pass `ditto-verify` checks those.
irdl.dialect @codebook {
  // %indices, %codebooks = "codebook.weight"() {name = "blk.0.attn_q.weight", bits = 4 : i64, block = 256 : i64}
  //     : () -> (memref<401408xi8>, memref<3136x16xf16>)
  //
  // A quantized tensor of the model, by name: the packed index bit stream
  // and the f16 codebooks of its blocks.
  irdl.operation @weight {
    %name = irdl.base "#builtin.string"
    %bits = irdl.base "#builtin.integer"
    %block = irdl.base "#builtin.integer"
    %indices = irdl.base "!builtin.memref"
    %codebooks = irdl.base "!builtin.memref"
    irdl.attributes { "name" = %name, "bits" = %bits, "block" = %block }
    irdl.results(indices: %indices, codebooks: %codebooks)
  }

  // "codebook.dequantize"(%indices, %codebooks, %w) {bits, block}
  //     : (memref<..xi8>, memref<..x..xf16>, memref<NxKxf32>) -> ()
  //
  // w[n, k] := codebooks[i / block][index i], i = n·K + k: the lookup, which
  // lowers to a structured gather.
  irdl.operation @dequantize {
    %indices = irdl.base "!builtin.memref"
    %codebooks = irdl.base "!builtin.memref"
    %out = irdl.base "!builtin.memref"
    %bits = irdl.base "#builtin.integer"
    %block = irdl.base "#builtin.integer"
    irdl.attributes { "bits" = %bits, "block" = %block }
    irdl.operands(indices: %indices, codebooks: %codebooks, out: %out)
    irdl.results()
  }

  // %v = "codebook.load"(%indices, %codebooks, %i) {bits, block}
  //     : (memref<..xi8>, memref<..x..xf16>, index) -> f32
  //
  // One weight of the dequantized tensor, by its row-major position i:
  // codebooks[i / block][index i]. A gather of rows (an embedding table)
  // reads its weights this way.
  irdl.operation @load {
    %indices = irdl.base "!builtin.memref"
    %codebooks = irdl.base "!builtin.memref"
    %i = irdl.is index
    %value = irdl.is f32
    %bits = irdl.base "#builtin.integer"
    %block = irdl.base "#builtin.integer"
    irdl.attributes { "bits" = %bits, "block" = %block }
    irdl.operands(indices: %indices, codebooks: %codebooks, i: %i)
    irdl.results(value: %value)
  }

  // "codebook.gemv"(%indices, %codebooks, %x, %y) {bits, block, alpha, beta}
  //
  // y := beta·y + alpha·Ŵ·x, Ŵ [N, K] never materialized (a fused kernel).
  irdl.operation @gemv {
    %indices = irdl.base "!builtin.memref"
    %codebooks = irdl.base "!builtin.memref"
    %x = irdl.base "!builtin.memref"
    %y = irdl.base "!builtin.memref"
    %bits = irdl.base "#builtin.integer"
    %block = irdl.base "#builtin.integer"
    %alpha = irdl.base "#builtin.float"
    %beta = irdl.base "#builtin.float"
    irdl.attributes { "bits" = %bits, "block" = %block, "alpha" = %alpha, "beta" = %beta }
    irdl.operands(indices: %indices, codebooks: %codebooks, x: %x, y: %y)
    irdl.results()
  }

  // "codebook.gemm"(%indices, %codebooks, %x, %c) {bits, block, alpha, beta}
  //
  // c := beta·c + alpha·X·Ŵᵀ, X [M, K], c [M, N] (a fused kernel).
  irdl.operation @gemm {
    %indices = irdl.base "!builtin.memref"
    %codebooks = irdl.base "!builtin.memref"
    %x = irdl.base "!builtin.memref"
    %c = irdl.base "!builtin.memref"
    %bits = irdl.base "#builtin.integer"
    %block = irdl.base "#builtin.integer"
    %alpha = irdl.base "#builtin.float"
    %beta = irdl.base "#builtin.float"
    irdl.attributes { "bits" = %bits, "block" = %block, "alpha" = %alpha, "beta" = %beta }
    irdl.operands(indices: %indices, codebooks: %codebooks, x: %x, c: %c)
    irdl.results()
  }
}
