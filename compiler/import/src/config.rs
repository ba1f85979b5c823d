//! The architecture hyper-parameters every importer produces and the emitter
//! consumes. One struct for the Llama and Qwen2 families.

use ditto_contracts::model::{Dims, Tensor};
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

impl ModelConfig {
    /// Checks the relations the emitted code relies on.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("ffn", self.ffn),
            ("vocab", self.vocab),
            ("max_ctx", self.max_ctx),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("{field} must be positive"));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "n_heads ({}) must be a multiple of n_kv_heads ({})",
                self.n_heads, self.n_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "head_dim ({}) must be even for RoPE",
                self.head_dim
            ));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.rope_theta) || !positive(self.rms_eps) {
            return Err("rope_theta and rms_eps must be positive".into());
        }
        Ok(())
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
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let dims = self.dims();
        let shape = |name: &str| match dims.tensor(name) {
            Tensor::Shaped(shape) => shape.iter().map(|e| e.value).collect(),
            _ => unreachable!("{name} is a tensor of the convention"),
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
            .map(|name| {
                let shape = dims
                    .layer_tensor(name)
                    .expect("a layer tensor of the convention");
                (name, shape.iter().map(|e| e.value).collect())
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
