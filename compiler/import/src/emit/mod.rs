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
//! | `func.rs` | the text builder of function bodies |
//! | `entries.rs` | the three entry points, the weights, the layer calls |
//! | `layer.rs` | one transformer block: RMSNorm, linear layers, SwiGLU, residuals |
//! | `attention.rs` | RoPE, the KV cache, grouped-query attention, softmax |

use ditto_contracts::model::attr;
use std::fmt::Write;

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

/// The whole module as text.
pub fn emit_module(cfg: &ModelConfig, sidecars: &Sidecars) -> String {
    let mut text = String::new();
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
    let attributes: Vec<String> = strings
        .iter()
        .map(|(key, value)| format!("{key} = \"{}\"", escape(value)))
        .chain(
            integers
                .iter()
                .map(|(key, value)| format!("{key} = {value} : i64")),
        )
        .collect();
    writeln!(text, "module attributes {{{}}} {{", attributes.join(", ")).unwrap();
    text.push_str(&entry_decode(cfg));
    text.push_str(&layer(cfg, Mode::Decode));
    text.push_str(&entry_prefill(cfg));
    text.push_str(&layer(cfg, Mode::Prefill));
    text.push_str(&entry_lm_head(cfg));
    text.push_str("}\n");
    text
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// One token (vectors) or T tokens (rows of a matrix).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Decode,
    Prefill,
}
