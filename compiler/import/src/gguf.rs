//! GGUF checkpoints: hyper-parameters from the metadata, tensors dequantized
//! to f32, llama-family q/k rows un-permuted back to the Hugging Face layout.

use std::path::Path;

use ditto_gguf::GgufFile;

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

/// Every tensor the model needs, checked for presence and shape.
pub fn tensors<'a>(
    gguf: &'a GgufFile,
    config: &ModelConfig,
) -> Result<Vec<PendingTensor<'a>>, ImportError> {
    let path: &Path = gguf.path();
    let mut pending = Vec::new();
    for (name, shape) in config.tensors() {
        let info = gguf
            .tensor(&name)
            .ok_or_else(|| ImportError::file(path, format!("missing tensor `{name}`")))?;
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
