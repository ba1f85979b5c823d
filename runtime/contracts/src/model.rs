//! The model configuration, as the module's attributes carry it and as the
//! payload manifest hands it to the runtime (docs/contracts.md §1–§2).
//!
//! `dittoc import` writes the attributes named in [`attr`] on the module;
//! `dittoc` reads them back into a [`ModelConfig`], which the manifest
//! carries; the runtime sizes its buffers from it.

use serde::{Deserialize, Serialize};

/// The module attributes of the model contract.
pub mod attr {
    /// The architecture, a string (`llama`, `qwen2`).
    pub const ARCH: &str = "ditto.arch";
    /// The weight file, relative to the module's directory.
    pub const WEIGHTS: &str = "ditto.weights";
    /// The tokenizer.json file, relative to the module's directory.
    pub const TOKENIZER: &str = "ditto.tokenizer";
    /// The tokenizer_config.json file, relative to the module's directory.
    pub const TOKENIZER_CONFIG: &str = "ditto.tokenizer_config";
    pub const N_LAYERS: &str = "ditto.n_layers";
    pub const D_MODEL: &str = "ditto.d_model";
    pub const N_HEADS: &str = "ditto.n_heads";
    pub const N_KV_HEADS: &str = "ditto.n_kv_heads";
    pub const HEAD_DIM: &str = "ditto.head_dim";
    /// The FFN's hidden width (in the module, not in the manifest).
    pub const FFN: &str = "ditto.ffn";
    pub const VOCAB: &str = "ditto.vocab";
    pub const MAX_CTX: &str = "ditto.max_ctx";
}

/// What the runtime needs to know about the compiled model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub max_ctx: usize,
}

impl ModelConfig {
    /// Each integer field with the module attribute it comes from.
    pub const INTEGER_ATTRIBUTES: [(&'static str, &'static str); 7] = [
        ("n_layers", attr::N_LAYERS),
        ("d_model", attr::D_MODEL),
        ("n_heads", attr::N_HEADS),
        ("n_kv_heads", attr::N_KV_HEADS),
        ("head_dim", attr::HEAD_DIM),
        ("vocab", attr::VOCAB),
        ("max_ctx", attr::MAX_CTX),
    ];

    /// Builds the configuration from the module's attributes: `arch` is
    /// [`attr::ARCH`]'s value, `integer(name)` the value of the integer
    /// attribute `name` (or the caller's error). A negative value is an
    /// error naming the attribute.
    pub fn from_attributes<E>(
        arch: String,
        mut integer: impl FnMut(&'static str) -> Result<i64, E>,
        negative: impl Fn(&'static str, i64) -> E,
    ) -> Result<ModelConfig, E> {
        let mut values = [0usize; 7];
        for (value, (_, attribute)) in values.iter_mut().zip(Self::INTEGER_ATTRIBUTES) {
            let v = integer(attribute)?;
            *value = usize::try_from(v).map_err(|_| negative(attribute, v))?;
        }
        let [n_layers, d_model, n_heads, n_kv_heads, head_dim, vocab, max_ctx] = values;
        Ok(ModelConfig {
            arch,
            n_layers,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab,
            max_ctx,
        })
    }

    /// The integer fields with their manifest names, in
    /// [`INTEGER_ATTRIBUTES`](Self::INTEGER_ATTRIBUTES)' order.
    pub fn integers(&self) -> [(&'static str, usize); 7] {
        [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("vocab", self.vocab),
            ("max_ctx", self.max_ctx),
        ]
    }

    /// What every reader relies on: no dimension is 0 and token ids fit an
    /// `i32`. The message names the manifest field (`model.NAME`).
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in self.integers() {
            if value == 0 {
                return Err(format!("model.{name} is 0"));
            }
        }
        if self.vocab > i32::MAX as usize {
            return Err(format!("model.vocab {} does not fit token ids", self.vocab));
        }
        Ok(())
    }
}
