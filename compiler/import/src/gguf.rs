//! GGUF checkpoints: hyper-parameters from the metadata, tensors dequantized
//! to f32, llama-family q/k rows un-permuted back to the Hugging Face layout.

use ditto_contracts::model::attr;
use ditto_gguf::{GgmlType, GgufFile, TokenizerConfig, Value};

use crate::{
    config::{limit, Arch, Keys, ModelConfig},
    sidecar::PendingTensor,
    ImportError,
};

/// The tensor a file's last layer must have (checked before anything is
/// sized by the layer count).
const LAYER_PROBE: &str = "attn_norm.weight";

/// An integer metadata value between 1 and the [`limit`] of `attribute`;
/// `None` when the key is absent.
fn dim(gguf: &GgufFile, key: &str, attribute: &str) -> Result<Option<usize>, ImportError> {
    let Some(value) = gguf.get(key) else {
        return Ok(None);
    };
    let limit = limit(attribute);
    let out_of_range = || {
        ImportError::file(
            gguf.path(),
            format!("`{key}` = {value} is not between 1 and {limit}"),
        )
    };
    match (value.as_u64(), value.as_i64()) {
        (Some(v), _) => match usize::try_from(v) {
            Ok(v) if (1..=limit).contains(&v) => Ok(Some(v)),
            _ => Err(out_of_range()),
        },
        (None, Some(_)) => Err(out_of_range()),
        (None, None) => Err(ImportError::file(
            gguf.path(),
            format!(
                "`{key}` has type {}, expected an integer",
                value.type_name()
            ),
        )),
    }
}

fn required_dim(gguf: &GgufFile, key: &str, attribute: &str) -> Result<usize, ImportError> {
    dim(gguf, key, attribute)?
        .ok_or_else(|| ImportError::file(gguf.path(), format!("metadata key `{key}` is missing")))
}

/// A number (a float, or an integer) metadata value; `None` when absent.
fn number(gguf: &GgufFile, key: &str) -> Result<Option<f64>, ImportError> {
    let Some(value) = gguf.get(key) else {
        return Ok(None);
    };
    match *value {
        Value::F32(v) => Ok(Some(v.into())),
        Value::F64(v) => Ok(Some(v)),
        _ => match value
            .as_i64()
            .map(|v| v as f64)
            .or(value.as_u64().map(|v| v as f64))
        {
            Some(v) => Ok(Some(v)),
            None => Err(ImportError::file(
                gguf.path(),
                format!("`{key}` has type {}, expected a number", value.type_name()),
            )),
        },
    }
}

/// Reads the hyper-parameters from the GGUF metadata (and the vocabulary
/// from `token_embd.weight`): every value type-checked and bounded, named
/// by its key; features the emitted model does not have (RoPE scaling,
/// partial RoPE, mixtures of experts) refused by name.
pub fn read_config(gguf: &GgufFile) -> Result<ModelConfig, ImportError> {
    let path = gguf.path();
    let fail = |message: String| ImportError::file(path, message);
    let arch_name = gguf.architecture()?;
    let arch = match arch_name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => {
            return Err(fail(format!(
                "unknown architecture `{other}` (general.architecture); supported: llama, qwen2"
            )))
        }
    };
    let keys = Keys::gguf(arch_name);
    let key = |suffix: &str| format!("{arch_name}.{suffix}");

    let scaling = key("rope.scaling.type");
    if let Some(kind) = gguf.get_opt::<&str>(&scaling)? {
        if kind != "none" {
            return Err(fail(format!(
                "`{scaling}` = `{kind}`: RoPE scaling is not supported"
            )));
        }
    }
    if gguf.tensor("rope_freqs.weight").is_some() {
        return Err(fail(
            "tensor `rope_freqs.weight` (RoPE frequency factors, as Llama 3.1's RoPE scaling \
             has them) is not supported"
                .into(),
        ));
    }
    let experts = key("expert_count");
    if let Some(n) = gguf.get(&experts) {
        if n.as_u64() != Some(0) {
            return Err(fail(format!(
                "`{experts}` = {n}: mixtures of experts are not supported"
            )));
        }
    }

    let n_layers = required_dim(gguf, &keys.n_layers, attr::N_LAYERS)?;
    let d_model = required_dim(gguf, &keys.d_model, attr::D_MODEL)?;
    let n_heads = required_dim(gguf, &keys.n_heads, attr::N_HEADS)?;
    let n_kv_heads = dim(gguf, &keys.n_kv_heads, attr::N_KV_HEADS)?.unwrap_or(n_heads);
    let head_dim = match dim(gguf, &keys.head_dim, attr::HEAD_DIM)? {
        Some(head_dim) => head_dim,
        None if d_model.is_multiple_of(n_heads) => d_model / n_heads,
        None => {
            return Err(fail(format!(
                "`{}` = {d_model} is not a multiple of `{}` = {n_heads} (and there is no `{}`)",
                keys.d_model, keys.n_heads, keys.head_dim
            )))
        }
    };
    for (suffix, what) in [
        (
            "attention.value_length",
            "value heads of another width than key heads",
        ),
        ("rope.dimension_count", "RoPE on part of each head"),
    ] {
        let k = key(suffix);
        if let Some(v) = dim(gguf, &k, attr::HEAD_DIM)? {
            if v != head_dim {
                return Err(fail(format!(
                    "`{k}` = {v} differs from the head width {head_dim}: {what} is not supported"
                )));
            }
        }
    }
    let ffn = required_dim(gguf, &keys.ffn, attr::FFN)?;
    let max_ctx = required_dim(gguf, &keys.max_ctx, attr::MAX_CTX)?;

    let embedding = gguf.get_tensor("token_embd.weight")?;
    let vocab = match embedding.shape()[..] {
        [rows, width] if width == d_model && (1..=limit(attr::VOCAB)).contains(&rows) => rows,
        ref shape => {
            return Err(fail(format!(
                "tensor `token_embd.weight` has shape {shape:?}, expected [vocabulary of 1 to {}, \
                 `{}` = {d_model}]",
                limit(attr::VOCAB),
                keys.d_model
            )))
        }
    };
    let vocab_key = key("vocab_size");
    if let Some(v) = dim(gguf, &vocab_key, attr::VOCAB)? {
        if v != vocab {
            return Err(fail(format!(
                "`{vocab_key}` = {v}, but tensor `token_embd.weight` has {vocab} rows"
            )));
        }
    }

    let config = ModelConfig {
        arch,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn,
        vocab,
        max_ctx,
        rope_theta: number(gguf, &keys.rope_theta)?.unwrap_or(10000.0),
        rms_eps: number(gguf, &keys.rms_eps)?
            .ok_or_else(|| fail(format!("metadata key `{}` is missing", keys.rms_eps)))?,
        qkv_bias: gguf.tensor("blk.0.attn_q.bias").is_some(),
        tied_embeddings: gguf.tensor("output.weight").is_none(),
    };
    config.validate_as(&keys).map_err(fail)?;
    Ok(config)
}

/// The tokenizer's special tokens ([`ditto_gguf::tokenizer_config`]), and
/// its vocabulary checked against the model's: every id the tokenizer can
/// give must have a row in `token_embd.weight`.
pub fn tokenizer_config(
    gguf: &GgufFile,
    config: &ModelConfig,
) -> Result<TokenizerConfig, ImportError> {
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
    if tokens.len() > config.vocab {
        return Err(ImportError::file(
            gguf.path(),
            format!(
                "`tokenizer.ggml.tokens` has {} tokens, but tensor `token_embd.weight` has only {} \
                 rows",
                tokens.len(),
                config.vocab
            ),
        ));
    }
    Ok(ditto_gguf::tokenizer_config(gguf)?)
}

/// A GGUF's `output.weight` found to be a second quantization of its
/// `token_embd.weight` ([`duplicate_head`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicateHead {
    /// Σ (embedding − head)² over the two tensors' estimated quantization
    /// noise (about 1 for two quantizations of one matrix).
    pub noise_ratio: f64,
    /// The copy imported for both uses: the one stored with more bits per
    /// weight (`output.weight` on a tie).
    pub keep: &'static str,
    pub embedding_type: &'static str,
    pub head_type: &'static str,
}

/// Two quantizations of one matrix differ by at most this many times their
/// estimated quantization noise (measured: 1.2 for Qwen2.5-Coder-0.5B's Q5_0
/// embedding and Q8_0 head); two different matrices of that model, by ~1000.
pub const DUPLICATE_NOISE_RATIO: f64 = 4.0;

/// Whether the GGUF's `output.weight` is the token embedding matrix again.
///
/// GGUF files of models with tied embeddings often store the LM head a
/// second time, quantized on its own (Qwen2.5-Coder-0.5B's: the embedding
/// in Q5_0, the head in Q8_0). The two copies then differ only by their
/// quantization: Σ (e − h)² is about the sum of the two tensors' noise,
/// estimated per run of 32 values as 32·s²/12 with the step
/// `s = (max − min) / (2^b − 1)`, b the type's whole bits per weight (24
/// for F32, 11 for F16, 8 for BF16). Different matrices differ by orders of
/// magnitude more. `None` when the file has no `output.weight`, when the
/// shapes differ, or when the difference exceeds [`DUPLICATE_NOISE_RATIO`]
/// times the noise.
pub fn duplicate_head(gguf: &GgufFile) -> Result<Option<DuplicateHead>, ImportError> {
    let (Some(embedding), Some(head)) = (
        gguf.tensor("token_embd.weight"),
        gguf.tensor("output.weight"),
    ) else {
        return Ok(None);
    };
    if embedding.shape() != head.shape() {
        return Ok(None);
    }
    let (e, h) = (gguf.dequantize(embedding)?, gguf.dequantize(head)?);
    let noise = |values: &[f32], ty: GgmlType| -> f64 {
        let levels = 2f64.powi(whole_bits(ty) as i32) - 1.0;
        values
            .chunks(32)
            .map(|run| {
                let (lo, hi) = run
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                let step = (hi as f64 - lo as f64) / levels;
                run.len() as f64 * step * step / 12.0
            })
            .sum()
    };
    let difference: f64 = e
        .iter()
        .zip(&h)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    let expected = noise(&e, embedding.ggml_type) + noise(&h, head.ggml_type);
    let noise_ratio = if expected > 0.0 {
        difference / expected
    } else if difference == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    if noise_ratio.is_nan() || noise_ratio > DUPLICATE_NOISE_RATIO {
        return Ok(None);
    }
    Ok(Some(DuplicateHead {
        noise_ratio,
        keep: if bits_per_weight(head.ggml_type) >= bits_per_weight(embedding.ggml_type) {
            "output.weight"
        } else {
            "token_embd.weight"
        },
        embedding_type: embedding.ggml_type.name(),
        head_type: head.ggml_type.name(),
    }))
}

/// Bits a type stores per weight, block scales included.
fn bits_per_weight(ty: GgmlType) -> f64 {
    ty.type_size() as f64 * 8.0 / ty.block_size() as f64
}

/// The whole bits of precision of a type's values (for the noise estimate).
fn whole_bits(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F32 | GgmlType::F64 => 24,
        GgmlType::F16 => 11,
        GgmlType::BF16 => 8,
        _ => (bits_per_weight(ty) as u32).clamp(1, 24),
    }
}

/// The layer a tensor name `blk.N.…` belongs to, and the rest of its name.
fn layer_of(name: &str) -> Option<(usize, &str)> {
    let (layer, rest) = name.strip_prefix("blk.")?.split_once('.')?;
    Some((layer.parse().ok()?, rest))
}

/// Every tensor the model needs, checked for presence and shape, and no
/// layer tensor the model would not use (an unsupported feature: a bias the
/// block has not, a layer beyond `block_count`).
/// `embedding_source`: the GGUF tensor whose values become
/// `token_embd.weight` (`output.weight` when [`duplicate_head`] keeps it).
pub fn tensors<'a>(
    gguf: &'a GgufFile,
    config: &ModelConfig,
    embedding_source: &str,
) -> Result<Vec<PendingTensor<'a>>, ImportError> {
    let path = gguf.path();
    let keys = Keys::gguf(config.arch.name());
    // The layer count comes from the metadata: the last layer must exist
    // before anything is sized by it.
    let last = config.n_layers.saturating_sub(1);
    if gguf.tensor(&format!("blk.{last}.{LAYER_PROBE}")).is_none() {
        let layers = gguf
            .tensors()
            .iter()
            .filter_map(|t| layer_of(&t.name))
            .map(|(layer, _)| layer.saturating_add(1))
            .max()
            .unwrap_or(0);
        return Err(ImportError::file(
            path,
            format!(
                "`{}` = {}, but there is no tensor `blk.{last}.{LAYER_PROBE}` (the file's tensors \
                 are of {layers} layers)",
                keys.n_layers, config.n_layers
            ),
        ));
    }
    let layer_tensors = config.layer_tensors();
    for t in gguf.tensors() {
        let Some((layer, rest)) = layer_of(&t.name) else {
            continue;
        };
        if layer >= config.n_layers {
            return Err(ImportError::file(
                path,
                format!(
                    "tensor `{}` is of layer {layer}, but `{}` = {}",
                    t.name, keys.n_layers, config.n_layers
                ),
            ));
        }
        if !layer_tensors.iter().any(|(name, _)| *name == rest) {
            return Err(ImportError::file(
                path,
                format!(
                    "tensor `{}` is not one of a {} block's (an unsupported feature)",
                    t.name,
                    config.arch.name()
                ),
            ));
        }
    }
    let mut pending = Vec::new();
    for (name, shape) in config.tensors() {
        let source = if name == "token_embd.weight" {
            embedding_source
        } else {
            &name
        };
        let info = gguf
            .tensor(source)
            .ok_or_else(|| ImportError::file(path, format!("missing tensor `{source}`")))?;
        if info.shape() != shape {
            return Err(ImportError::file(
                path,
                format!(
                    "tensor `{name}` has shape {:?}, expected {:?} from the metadata",
                    info.shape(),
                    shape
                ),
            ));
        }
        // llama.cpp's converter permutes llama q/k rows for its RoPE layout.
        let unpermute_heads = match (config.arch, name.rsplit('.').nth(1)) {
            (Arch::Llama, Some("attn_q")) => Some(config.n_heads),
            (Arch::Llama, Some("attn_k")) => Some(config.n_kv_heads),
            _ => None,
        };
        let head_dim = config.head_dim;
        pending.push(PendingTensor {
            name,
            shape,
            produce: Box::new(move || {
                let values = gguf.dequantize(info)?;
                match unpermute_heads {
                    None => Ok(values),
                    Some(heads) => unpermute(&values, heads, head_dim).ok_or_else(|| {
                        ImportError::file(
                            gguf.path(),
                            format!(
                                "tensor `{}` ({} values) is not {heads} heads of {head_dim} rows",
                                info.name,
                                values.len()
                            ),
                        )
                    }),
                }
            }),
        });
    }
    Ok(pending)
}

/// Inverse of llama.cpp's `permute`: GGUF row h·hd + 2j + i holds Hugging
/// Face row h·hd + i·hd/2 + j (i ∈ {0, 1}, j < hd/2). Works for weights
/// (rows of any width) and biases (width 1). `None` unless `values` are
/// `heads` × `head_dim` rows of one width, `head_dim` even.
pub fn unpermute(values: &[f32], heads: usize, head_dim: usize) -> Option<Vec<f32>> {
    let rows = heads.checked_mul(head_dim)?;
    if rows == 0 || !values.len().is_multiple_of(rows) || !head_dim.is_multiple_of(2) {
        return None;
    }
    let width = values.len() / rows;
    if width == 0 {
        return Some(Vec::new());
    }
    let gguf_rows: Vec<&[f32]> = values.chunks_exact(width).collect();
    let half = head_dim / 2;
    let mut out = Vec::with_capacity(values.len());
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..half {
                out.extend_from_slice(gguf_rows.get(h * head_dim + 2 * j + i)?);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::unpermute;

    /// llama.cpp's permute, written from its definition:
    /// reshape(n_head, 2, hd/2, w).swapaxes(1, 2).reshape(rows, w).
    fn permute(values: &[f32], heads: usize, head_dim: usize, width: usize) -> Vec<f32> {
        let half = head_dim / 2;
        let mut out = Vec::with_capacity(values.len());
        for h in 0..heads {
            for j in 0..half {
                for i in 0..2 {
                    let row = h * head_dim + i * half + j;
                    out.extend_from_slice(&values[row * width..(row + 1) * width]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let (heads, head_dim, width) = (3, 8, 5);
        let original: Vec<f32> = (0..heads * head_dim * width).map(|v| v as f32).collect();
        let permuted = permute(&original, heads, head_dim, width);
        assert_ne!(permuted, original);
        assert_eq!(unpermute(&permuted, heads, head_dim), Some(original));
        assert_eq!(unpermute(&permuted, 0, head_dim), None);
        assert_eq!(unpermute(&permuted, heads, 7), None);
        assert_eq!(unpermute(&permuted[1..], heads, head_dim), None);
    }
}
