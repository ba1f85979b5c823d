//! Emits the transformer as an MLIR module: linalg on memrefs, weights as
//! `ditto.weight` ops, the KV cache as arguments (docs/contracts.md §3).
//!
//! The module has five functions, read top to bottom:
//!
//! - `@ditto_decode`: one token at `pos` → logits; calls `@decode_layer` per layer.
//! - `@decode_layer`: one transformer block on a vector `x: memref<D>`.
//! - `@ditto_prefill`: T tokens at `pos..pos+T` → final-normed hidden rows.
//! - `@prefill_layer`: one transformer block on rows `x: memref<TxD>`.
//! - `@ditto_lm_head`: hidden rows → logits rows.
//!
//! Decode and prefill are the same block written at two ranks: a matrix-vector
//! product per projection when there is one token (which the e-graph stage maps
//! to sgemv), a matrix-matrix product when there are T (sgemm).
//!
//! | file | part |
//! |---|---|
//! | `mod.rs` | the module and its attributes (the model contract) |
//! | `func.rs` | the builder of function bodies, one method per upstream op |
//! | `entries.rs` | the three entry points, the weights, the layer calls |
//! | `layer.rs` | one transformer block: RMSNorm, linear layers, SwiGLU, residuals |
//! | `attention.rs` | RoPE, the KV cache, grouped-query attention, softmax |

use ditto_contracts::model::attr;
use ditto_ir::melior::{
    ir::{
        attribute::{IntegerAttribute, StringAttribute},
        operation::OperationMutLike,
        r#type::IntegerType,
        Location, Module,
    },
    Context,
};

use crate::config::ModelConfig;

mod attention;
mod entries;
mod func;
mod layer;

use entries::{entry_decode, entry_lm_head, entry_prefill};
use layer::layer;

/// File names the module refers to, relative to the module's directory.
#[derive(Clone, Debug)]
pub struct Sidecars {
    pub weights: String,
    pub tokenizer: String,
    pub tokenizer_config: String,
}

/// The whole module, built in `context` (which has the project's dialects
/// loaded: see `ditto_ir::create_context`). It is not verified yet.
pub fn emit_module<'c>(context: &'c Context, cfg: &ModelConfig, sidecars: &Sidecars) -> Module<'c> {
    let mut module = Module::new(Location::unknown(context));
    // The model contract's attributes (ditto_contracts::model::attr).
    let strings = [
        (attr::ARCH, cfg.arch.name()),
        (attr::WEIGHTS, &sidecars.weights),
        (attr::TOKENIZER, &sidecars.tokenizer),
        (attr::TOKENIZER_CONFIG, &sidecars.tokenizer_config),
    ];
    let integers = [
        (attr::N_LAYERS, cfg.n_layers),
        (attr::D_MODEL, cfg.d_model),
        (attr::N_HEADS, cfg.n_heads),
        (attr::N_KV_HEADS, cfg.n_kv_heads),
        (attr::HEAD_DIM, cfg.head_dim),
        (attr::FFN, cfg.ffn),
        (attr::VOCAB, cfg.vocab),
        (attr::MAX_CTX, cfg.max_ctx),
    ];
    let i64_type = IntegerType::new(context, 64).into();
    let mut op = module.as_operation_mut();
    for (key, value) in strings {
        op.set_attribute(key, StringAttribute::new(context, value).into());
    }
    for (key, value) in integers {
        op.set_attribute(key, IntegerAttribute::new(i64_type, value as i64).into());
    }
    entry_decode(context, &module, cfg);
    layer(context, &module, cfg, Mode::Decode);
    entry_prefill(context, &module, cfg);
    layer(context, &module, cfg, Mode::Prefill);
    entry_lm_head(context, &module, cfg);
    module
}

/// One token (vectors) or T tokens (rows of a matrix).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Decode,
    Prefill,
}
