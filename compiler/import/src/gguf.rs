//! GGUF checkpoints: hyper-parameters from the metadata, tensors dequantized
//! to f32, llama-family q/k rows un-permuted back to the Hugging Face layout.

use std::path::Path;

use ditto_gguf::{GgmlType, GgufFile};

use crate::{
    config::{Arch, ModelConfig},
    sidecar::PendingTensor,
    ImportError,
};

pub fn read_config(gguf: &GgufFile) -> Result<ModelConfig, ImportError> {
    let path = gguf.path();
    let err = |e: ditto_gguf::GgufError| ImportError::file(path, e.to_string());
    let arch_name = gguf.architecture().map_err(err)?;
    let arch = match arch_name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => {
            return Err(ImportError::file(
                path,
                format!(
                "unknown architecture `{other}` (general.architecture); supported: llama, qwen2"
            ),
            ))
        }
    };
    let key = |suffix: &str| format!("{arch_name}.{suffix}");
    if let Some(kind) = gguf
        .get_opt::<&str>(&key("rope.scaling.type"))
        .map_err(err)?
    {
        if kind != "none" {
            return Err(ImportError::file(
                path,
                format!("RoPE scaling `{kind}` is not supported yet"),
            ));
        }
    }
    let u = |suffix: &str| -> Result<usize, ImportError> {
        gguf.arch_u32(suffix).map(|v| v as usize).map_err(err)
    };
    let n_heads = u("attention.head_count")?;
    let n_kv_heads = gguf
        .get_opt::<u32>(&key("attention.head_count_kv"))
        .map_err(err)?
        .map_or(n_heads, |v| v as usize);
    let d_model = u("embedding_length")?;
    let head_dim = gguf
        .get_opt::<u32>(&key("attention.key_length"))
        .map_err(err)?
        .map_or(d_model / n_heads.max(1), |v| v as usize);
    let embedding = gguf.get_tensor("token_embd.weight").map_err(err)?;
    let config = ModelConfig {
        arch,
        n_layers: u("block_count")?,
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn: u("feed_forward_length")?,
        vocab: embedding.shape()[0],
        max_ctx: u("context_length")?,
        rope_theta: gguf
            .get_opt::<f32>(&key("rope.freq_base"))
            .map_err(err)?
            .map_or(10000.0, f64::from),
        rms_eps: gguf
            .get_f32(&key("attention.layer_norm_rms_epsilon"))
            .map_err(err)? as f64,
        qkv_bias: gguf.tensor("blk.0.attn_q.bias").is_some(),
        tied_embeddings: gguf.tensor("output.weight").is_none(),
    };
    config
        .validate()
        .map_err(|message| ImportError::file(path, message))?;
    Ok(config)
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
    let path = gguf.path();
    let err = |e: ditto_gguf::GgufError| ImportError::file(path, e.to_string());
    let (Some(embedding), Some(head)) = (
        gguf.tensor("token_embd.weight"),
        gguf.tensor("output.weight"),
    ) else {
        return Ok(None);
    };
    if embedding.shape() != head.shape() {
        return Ok(None);
    }
    let (e, h) = (
        gguf.dequantize(embedding).map_err(err)?,
        gguf.dequantize(head).map_err(err)?,
    );
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

/// Every tensor the model needs, checked for presence and shape.
/// `embedding_source`: the GGUF tensor whose values become
/// `token_embd.weight` (`output.weight` when [`duplicate_head`] keeps it).
pub fn tensors<'a>(
    gguf: &'a GgufFile,
    config: &ModelConfig,
    embedding_source: &str,
) -> Result<Vec<PendingTensor<'a>>, ImportError> {
    let path: &Path = gguf.path();
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
                let values = gguf.dequantize(info).map_err(|e| e.to_string())?;
                Ok(match unpermute_heads {
                    Some(heads) => unpermute(&values, heads, head_dim),
                    None => values,
                })
            }),
        });
    }
    Ok(pending)
}

/// Inverse of llama.cpp's `permute`: GGUF row h·hd + 2j + i holds Hugging
/// Face row h·hd + i·hd/2 + j (i ∈ {0, 1}, j < hd/2). Works for weights
/// (rows of any width) and biases (width 1).
pub fn unpermute(values: &[f32], heads: usize, head_dim: usize) -> Vec<f32> {
    let rows = heads * head_dim;
    let width = values.len() / rows;
    let half = head_dim / 2;
    let mut out = vec![0.0; values.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..half {
                let hf_row = h * head_dim + i * half + j;
                let gguf_row = h * head_dim + 2 * j + i;
                out[hf_row * width..(hf_row + 1) * width]
                    .copy_from_slice(&values[gguf_row * width..(gguf_row + 1) * width]);
            }
        }
    }
    out
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
        assert_eq!(unpermute(&permuted, heads, head_dim), original);
    }
}
