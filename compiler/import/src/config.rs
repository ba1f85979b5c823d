//! The architecture hyper-parameters every importer produces and the emitter
//! consumes. One struct for the Llama and Qwen2 families.

use ditto_contracts::model::{attr, Dims, Tensor, LIMITS, MAX_CTX};
use serde::{Deserialize, Serialize};

/// Model families the importer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }
}

/// Everything the emitted module depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Width of the SwiGLU hidden layer.
    pub ffn: usize,
    pub vocab: usize,
    pub max_ctx: usize,
    pub rope_theta: f64,
    pub rms_eps: f64,
    /// q/k/v projections carry a bias (Qwen2).
    pub qkv_bias: bool,
    /// The LM head reuses the token embedding matrix.
    pub tied_embeddings: bool,
}

/// The largest value of the dimension the module attribute `attribute`
/// holds ([`LIMITS`], [`MAX_CTX`]), so that a reader can bound a value
/// before anything is sized by it.
pub fn limit(attribute: &str) -> usize {
    if attribute == attr::MAX_CTX {
        return MAX_CTX;
    }
    LIMITS
        .iter()
        .find(|(name, _)| *name == attribute)
        .map_or(0, |&(_, limit)| limit)
}

/// Where each field of a [`ModelConfig`] came from, in the source file's
/// own words (`num_hidden_layers`, `qwen2.block_count`, ...): validation
/// messages name these, not the struct's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub n_layers: String,
    pub d_model: String,
    pub n_heads: String,
    pub n_kv_heads: String,
    pub head_dim: String,
    pub ffn: String,
    pub vocab: String,
    pub max_ctx: String,
    pub rope_theta: String,
    pub rms_eps: String,
}

impl Keys {
    /// The module attributes' names (`ditto.n_layers`, ...), for a
    /// configuration that was not read from a file.
    pub fn module() -> Keys {
        Keys {
            n_layers: attr::N_LAYERS.into(),
            d_model: attr::D_MODEL.into(),
            n_heads: attr::N_HEADS.into(),
            n_kv_heads: attr::N_KV_HEADS.into(),
            head_dim: attr::HEAD_DIM.into(),
            ffn: attr::FFN.into(),
            vocab: attr::VOCAB.into(),
            max_ctx: attr::MAX_CTX.into(),
            rope_theta: "rope_theta".into(),
            rms_eps: "rms_eps".into(),
        }
    }

    /// A Hugging Face `config.json`'s keys.
    pub fn hf() -> Keys {
        Keys {
            n_layers: "num_hidden_layers".into(),
            d_model: "hidden_size".into(),
            n_heads: "num_attention_heads".into(),
            n_kv_heads: "num_key_value_heads".into(),
            head_dim: "head_dim".into(),
            ffn: "intermediate_size".into(),
            vocab: "vocab_size".into(),
            max_ctx: "max_position_embeddings".into(),
            rope_theta: "rope_theta".into(),
            rms_eps: "rms_norm_eps".into(),
        }
    }

    /// A GGUF file's metadata keys for architecture `arch` (the vocabulary
    /// is the rows of `token_embd.weight`).
    pub fn gguf(arch: &str) -> Keys {
        let key = |suffix: &str| format!("{arch}.{suffix}");
        Keys {
            n_layers: key("block_count"),
            d_model: key("embedding_length"),
            n_heads: key("attention.head_count"),
            n_kv_heads: key("attention.head_count_kv"),
            head_dim: key("attention.key_length"),
            ffn: key("feed_forward_length"),
            vocab: "token_embd.weight's rows".into(),
            max_ctx: key("context_length"),
            rope_theta: key("rope.freq_base"),
            rms_eps: key("attention.layer_norm_rms_epsilon"),
        }
    }
}

impl ModelConfig {
    /// [`validate_as`](Self::validate_as) with the module attributes'
    /// names ([`Keys::module`]). The readers validate with their file's
    /// keys.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_as(&Keys::module())
    }

    /// Checks the relations the emitted code relies on, and every dimension
    /// against the bounds of the module contract ([`limit`]); messages name
    /// each value by the key it was read from (`keys`).
    pub fn validate_as(&self, keys: &Keys) -> Result<(), String> {
        let dims = [
            (&keys.n_layers, self.n_layers, attr::N_LAYERS),
            (&keys.d_model, self.d_model, attr::D_MODEL),
            (&keys.n_heads, self.n_heads, attr::N_HEADS),
            (&keys.n_kv_heads, self.n_kv_heads, attr::N_KV_HEADS),
            (&keys.head_dim, self.head_dim, attr::HEAD_DIM),
            (&keys.ffn, self.ffn, attr::FFN),
            (&keys.vocab, self.vocab, attr::VOCAB),
            (&keys.max_ctx, self.max_ctx, attr::MAX_CTX),
        ];
        for (key, value, attribute) in dims {
            let limit = limit(attribute);
            if value == 0 || value > limit {
                return Err(format!("`{key}` = {value} is not between 1 and {limit}"));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "`{}` = {} is not a multiple of `{}` = {}",
                keys.n_heads, self.n_heads, keys.n_kv_heads, self.n_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "`{}` = {} is odd (RoPE rotates pairs of values)",
                keys.head_dim, self.head_dim
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "`{}` = {} is not a positive number",
                keys.rope_theta, self.rope_theta
            ));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0 && self.rms_eps < 1.0) {
            return Err(format!(
                "`{}` = {} is not a positive number below 1",
                keys.rms_eps, self.rms_eps
            ));
        }
        // What the module's verification checks, in case a relation above
        // missed one (its message names module attributes).
        self.dims().check()
    }

    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Query heads that share one key/value head.
    pub fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// The dimensions the tensor-shape convention is written in.
    pub fn dims(&self) -> Dims {
        Dims {
            n_layers: self.n_layers,
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            ffn: self.ffn,
            vocab: self.vocab,
        }
    }

    /// The name and row-major shape of every tensor the model needs, in the
    /// order the emitted module first uses them (docs/contracts.md §1).
    /// Call it on a [validated](Self::validate) configuration: it has one
    /// entry per layer.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let dims = self.dims();
        let shape = |name: &str| match dims.tensor(name) {
            Tensor::Shaped(shape) => shape.iter().map(|e| e.value).collect(),
            Tensor::NoSuchLayer(_) | Tensor::Other => Vec::new(),
        };
        let mut tensors = vec![("token_embd.weight".to_string(), shape("token_embd.weight"))];
        for layer in 0..self.n_layers {
            for (name, shape) in self.layer_tensors() {
                tensors.push((format!("blk.{layer}.{name}"), shape));
            }
        }
        tensors.push(("output_norm.weight".into(), shape("output_norm.weight")));
        if !self.tied_embeddings {
            tensors.push(("output.weight".into(), shape("output.weight")));
        }
        tensors
    }

    /// One layer's tensors, names relative to `blk.N.`, in argument order of
    /// the emitted layer functions, with their shapes
    /// ([`Dims::layer_tensor`]).
    pub fn layer_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        let bias = |name| self.qkv_bias.then_some(name);
        let names = [
            Some("attn_norm.weight"),
            Some("attn_q.weight"),
            bias("attn_q.bias"),
            Some("attn_k.weight"),
            bias("attn_k.bias"),
            Some("attn_v.weight"),
            bias("attn_v.bias"),
            Some("attn_output.weight"),
            Some("ffn_norm.weight"),
            Some("ffn_gate.weight"),
            Some("ffn_up.weight"),
            Some("ffn_down.weight"),
        ];
        let dims = self.dims();
        names
            .into_iter()
            .flatten()
            .filter_map(|name| {
                let shape = dims.layer_tensor(name)?;
                Some((name, shape.iter().map(|e| e.value).collect()))
            })
            .collect()
    }

    /// Name of the LM head matrix.
    pub fn lm_head_tensor(&self) -> &'static str {
        if self.tied_embeddings {
            "token_embd.weight"
        } else {
            "output.weight"
        }
    }
}
