// RUN: %ditto-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ditto-verify)'
//
// ditto-verify checks a model module (one with ditto.arch) against the model
// contract: attributes in range and consistent, each weight declared once and
// shaped as the attributes say, the entry points' buffers sized by them.
// A model module that keeps the contract: no diagnostics.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    %w523 = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<10x8xf32>
    %w511 = "ditto.weight"() {name = "blk.0.attn_k.weight"} : () -> memref<4x8xf32>
    %w616 = "ditto.weight"() {name = "blk.0.ffn_down.weight"} : () -> memref<8x12xf32>
    %w919 = "ditto.weight"() {name = "extra.table"} : () -> memref<3xf32>
    %i, %c = "codebook.weight"() {name = "blk.0.attn_q.weight", bits = 4 : i64, block = 16 : i64} : () -> (memref<32xi8>, memref<4x16xf16>)
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// KV heads that do not divide the query heads.
// expected-error @+1 {{ditto.n_heads = 2 is not a multiple of ditto.n_kv_heads = 3}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 3 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A dimension out of range.
// expected-error @+1 {{ditto.n_layers = 0 is not between 1 and 4096}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 0 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A negative vocabulary.
// expected-error @+1 {{ditto.vocab = -10 is negative}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = -10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A context length out of range.
// expected-error @+1 {{ditto.max_ctx = 1073741824 is not between 1 and 16777216}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 1073741824 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A missing attribute.
// expected-error @+1 {{the model module has no integer attribute ditto.ffn}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// One weight declared twice with two types.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    %w523 = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<10x8xf32>
    // expected-error @+1 {{weight "token_embd.weight" is declared as ditto.weight memref<5x16xf32> here but as ditto.weight memref<10x8xf32> at}}
    %w806 = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<5x16xf32>
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A weight whose shape disagrees with the attributes.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    // expected-error @+1 {{weight "blk.0.attn_k.weight" is ditto.weight memref<8x8xf32>, but the module's attributes make it [4, 8] (ditto.n_kv_heads × ditto.head_dim; ditto.d_model)}}
    %w108 = "ditto.weight"() {name = "blk.0.attn_k.weight"} : () -> memref<8x8xf32>
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A weight of a layer the model does not have.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    // expected-error @+1 {{weight "blk.1.attn_q.weight" is of layer 1, but ditto.n_layers = 1}}
    %w817 = "ditto.weight"() {name = "blk.1.attn_q.weight"} : () -> memref<8x8xf32>
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A quantized weight stored in the wrong number of index bytes.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    // expected-error @+1 {{weight "blk.0.attn_q.weight" is stored as codebook.weight memref<33xi8>, memref<4x16xf16> (bits = 4, block = 16), not as 32 index bytes and 4 codebooks}}
    %i, %c = "codebook.weight"() {name = "blk.0.attn_q.weight", bits = 4 : i64, block = 16 : i64} : () -> (memref<33xi8>, memref<4x16xf16>)
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// A KV cache the attributes do not size.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  // expected-error @+1 {{@ditto_decode's argument 1 (%k_cache) is memref<1x?x2x4xf32>, but the module's attributes make it memref<1x?x1x4xf32> (ditto.n_layers, ?, ditto.n_kv_heads, ditto.head_dim)}}
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x2x4xf32>, %v_cache: memref<1x?x2x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>) {
    return
  }
}

// -----

// An entry point missing.
// expected-error @+1 {{the model module has no function @ditto_lm_head, an entry point of the executable}}
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
}

// -----

// An entry point with an argument too many.
module attributes {ditto.arch = "qwen2", ditto.d_model = 8 : i64, ditto.ffn = 12 : i64, ditto.head_dim = 4 : i64, ditto.max_ctx = 16 : i64, ditto.n_heads = 2 : i64, ditto.n_kv_heads = 1 : i64, ditto.n_layers = 1 : i64, ditto.vocab = 10 : i64} {
  func.func @ditto_decode(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %token: index, %pos: index, %logits: memref<10xf32>) {
    return
  }
  func.func @ditto_prefill(%weights: memref<?xi8>, %k_cache: memref<1x?x1x4xf32>, %v_cache: memref<1x?x1x4xf32>, %tokens: memref<?xi32>, %pos: index, %hidden: memref<?x8xf32>) {
    return
  }
  // expected-error @+1 {{@ditto_lm_head must take 3 arguments (weights, hidden, logits) and return nothing}}
  func.func @ditto_lm_head(%weights: memref<?xi8>, %hidden: memref<?x8xf32>, %logits: memref<?x10xf32>, %extra: index) {
    return
  }
}
