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

/// The model dimensions compiled into an executable's code, in the order of
/// [`ModelConfig::integers`]: n_layers, d_model, n_heads, n_kv_heads,
/// head_dim, vocab, max_ctx.
pub type CompiledShape = [i64; 7];

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

    /// The shape an executable is compiled for, as its generated `main`
    /// hands it to `ditto_rt_main` (docs/contracts.md §3): the values of
    /// [`integers`](Self::integers), in order.
    pub fn compiled_shape(&self) -> CompiledShape {
        self.integers()
            .map(|(_, value)| i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// This configuration (the payload's manifest) against the shape the
    /// executable's code was compiled for: the first field that differs,
    /// named, with both values.
    pub fn check_compiled(&self, compiled: &CompiledShape) -> Result<(), String> {
        for ((name, manifest), &compiled) in self.integers().into_iter().zip(compiled) {
            if i64::try_from(manifest) != Ok(compiled) {
                return Err(format!(
                    "the payload's manifest says model.{name} = {manifest}, but this executable's \
                     code was compiled for {compiled}: the payload is not this executable's"
                ));
            }
        }
        Ok(())
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

/// The dimensions every tensor of a model is shaped by (the integer module
/// attributes but `ditto.max_ctx`), and the tensor-shape convention: which
/// tensor a name stands for and the shape it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
}

/// The largest value each dimension may have: far above any model this
/// project compiles, low enough that every size computed from them (a
/// tensor's bytes, the KV cache of `ditto.max_ctx` ≤ [`MAX_CTX`] positions)
/// fits an `i64` without overflow.
pub const LIMITS: [(&str, usize); 7] = [
    (attr::N_LAYERS, 4096),
    (attr::D_MODEL, 1 << 17),
    (attr::N_HEADS, 4096),
    (attr::N_KV_HEADS, 4096),
    (attr::HEAD_DIM, 4096),
    (attr::FFN, 1 << 20),
    (attr::VOCAB, i32::MAX as usize),
];

/// The largest `ditto.max_ctx`.
pub const MAX_CTX: usize = 1 << 24;

/// One extent of a tensor's shape and the attributes it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub value: usize,
    pub from: &'static str,
}

/// What a weight's name says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tensor {
    /// A tensor of the convention, with its shape.
    Shaped(Vec<Extent>),
    /// `blk.N.…` with N not below `ditto.n_layers`.
    NoSuchLayer(usize),
    /// A name outside the convention (a module may read other tensors of
    /// its weight file; only the weight file says what they hold).
    Other,
}

impl Dims {
    /// The relations every reader of the model relies on, each named by
    /// its module attributes: every dimension between 1 and its
    /// [`LIMITS`] entry, `ditto.n_kv_heads` dividing `ditto.n_heads`, and an
    /// even `ditto.head_dim` (RoPE rotates halves).
    pub fn check(&self) -> Result<(), String> {
        let values = [
            self.n_layers,
            self.d_model,
            self.n_heads,
            self.n_kv_heads,
            self.head_dim,
            self.ffn,
            self.vocab,
        ];
        for ((name, limit), value) in LIMITS.into_iter().zip(values) {
            if value == 0 || value > limit {
                return Err(format!("{name} = {value} is not between 1 and {limit}"));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "{} = {} is not a multiple of {} = {}",
                attr::N_HEADS,
                self.n_heads,
                attr::N_KV_HEADS,
                self.n_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "{} = {} is odd (RoPE rotates halves)",
                attr::HEAD_DIM,
                self.head_dim
            ));
        }
        Ok(())
    }

    fn d(&self) -> Extent {
        Extent {
            value: self.d_model,
            from: attr::D_MODEL,
        }
    }

    fn q(&self) -> Extent {
        Extent {
            value: self.n_heads * self.head_dim,
            from: "ditto.n_heads × ditto.head_dim",
        }
    }

    fn kv(&self) -> Extent {
        Extent {
            value: self.n_kv_heads * self.head_dim,
            from: "ditto.n_kv_heads × ditto.head_dim",
        }
    }

    fn ffn(&self) -> Extent {
        Extent {
            value: self.ffn,
            from: attr::FFN,
        }
    }

    fn vocab(&self) -> Extent {
        Extent {
            value: self.vocab,
            from: attr::VOCAB,
        }
    }

    /// The shape of a layer's tensor, by its name relative to `blk.N.`
    /// (`attn_q.weight`); `None` for a name that is not one.
    pub fn layer_tensor(&self, name: &str) -> Option<Vec<Extent>> {
        let (d, q, kv, ffn) = (self.d(), self.q(), self.kv(), self.ffn());
        Some(match name {
            "attn_norm.weight" | "ffn_norm.weight" => vec![d],
            "attn_q.weight" => vec![q, d],
            "attn_q.bias" => vec![q],
            "attn_k.weight" | "attn_v.weight" => vec![kv, d],
            "attn_k.bias" | "attn_v.bias" => vec![kv],
            "attn_output.weight" => vec![d, q],
            "ffn_gate.weight" | "ffn_up.weight" => vec![ffn, d],
            "ffn_down.weight" => vec![d, ffn],
            _ => return None,
        })
    }

    /// What the weight `name` is, and its shape when the convention names
    /// it: `token_embd.weight`, `output.weight`, `output_norm.weight`, and
    /// `blk.N.` followed by a [`layer_tensor`](Self::layer_tensor) name.
    pub fn tensor(&self, name: &str) -> Tensor {
        match name {
            "token_embd.weight" | "output.weight" => {
                return Tensor::Shaped(vec![self.vocab(), self.d()])
            }
            "output_norm.weight" => return Tensor::Shaped(vec![self.d()]),
            _ => {}
        }
        let Some((layer, tensor)) = name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split_once('.'))
        else {
            return Tensor::Other;
        };
        let (Ok(layer), Some(shape)) = (layer.parse::<usize>(), self.layer_tensor(tensor)) else {
            return Tensor::Other;
        };
        if layer >= self.n_layers {
            Tensor::NoSuchLayer(layer)
        } else {
            Tensor::Shaped(shape)
        }
    }
}

#[cfg(test)]
mod dims_tests {
    use super::*;

    fn qwen_05b() -> Dims {
        Dims {
            n_layers: 24,
            d_model: 896,
            n_heads: 14,
            n_kv_heads: 2,
            head_dim: 64,
            ffn: 4864,
            vocab: 151_936,
        }
    }

    fn values(tensor: Tensor) -> Vec<usize> {
        match tensor {
            Tensor::Shaped(shape) => shape.iter().map(|e| e.value).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shapes_follow_the_convention() {
        let dims = qwen_05b();
        assert_eq!(values(dims.tensor("token_embd.weight")), [151_936, 896]);
        assert_eq!(values(dims.tensor("blk.0.attn_q.weight")), [896, 896]);
        assert_eq!(values(dims.tensor("blk.23.attn_k.weight")), [128, 896]);
        assert_eq!(values(dims.tensor("blk.3.attn_v.bias")), [128]);
        assert_eq!(values(dims.tensor("blk.3.attn_output.weight")), [896, 896]);
        assert_eq!(values(dims.tensor("blk.3.ffn_down.weight")), [896, 4864]);
        assert_eq!(values(dims.tensor("output_norm.weight")), [896]);
        assert_eq!(dims.tensor("blk.24.attn_q.weight"), Tensor::NoSuchLayer(24));
        assert_eq!(dims.tensor("blk.x.attn_q.weight"), Tensor::Other);
        assert_eq!(dims.tensor("blk.0.rope_freqs"), Tensor::Other);
        assert_eq!(dims.tensor("extra"), Tensor::Other);
    }

    #[test]
    fn checks_name_the_attributes() {
        assert_eq!(qwen_05b().check(), Ok(()));
        let bad = |f: fn(&mut Dims)| {
            let mut dims = qwen_05b();
            f(&mut dims);
            dims.check().unwrap_err()
        };
        assert!(bad(|d| d.n_kv_heads = 3)
            .contains("ditto.n_heads = 14 is not a multiple of ditto.n_kv_heads = 3"));
        assert!(bad(|d| d.head_dim = 63).contains("ditto.head_dim = 63 is odd"));
        assert!(bad(|d| d.n_layers = 0).contains("ditto.n_layers = 0 is not between 1 and 4096"));
        assert!(bad(|d| d.vocab = 1 << 40).contains("ditto.vocab"));
        assert!(bad(|d| d.ffn = usize::MAX).contains("ditto.ffn"));
    }
}
