//! Hugging Face checkpoints: `config.json`, `model.safetensors` (or shards
//! with `model.safetensors.index.json`), `tokenizer.json`,
//! `tokenizer_config.json`, `generation_config.json`.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    path::{Path, PathBuf},
};

use ditto_files::Symlinks;
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::{
    config::{Arch, ModelConfig},
    sidecar::PendingTensor,
    ImportError, TokenizerConfig,
};

/// The index of a checkpoint in shards.
const INDEX: &str = "model.safetensors.index.json";

/// An opened checkpoint: its config and its tensors, mapped.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    shards: Vec<(PathBuf, Mmap)>,
    /// HF tensor name → shard index.
    index: HashMap<String, usize>,
}

fn read_json(path: &Path) -> Result<Value, ImportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| ImportError::file(path, format!("invalid JSON: {e}")))
}

fn field_usize(config: &Value, path: &Path, key: &str) -> Result<usize, ImportError> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| ImportError::file(path, format!("missing or non-integer field `{key}`")))
}

fn field_f64(config: &Value, key: &str, default: f64) -> f64 {
    config.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// Reads `config.json` into a [`ModelConfig`].
pub fn read_config(dir: &Path) -> Result<ModelConfig, ImportError> {
    let path = dir.join("config.json");
    let config = read_json(&path)?;
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let arch = match model_type {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => {
            return Err(ImportError::file(
                &path,
                format!("unknown architecture `{other}` (model_type); supported: llama, qwen2"),
            ))
        }
    };
    if config.get("rope_scaling").is_some_and(|v| !v.is_null()) {
        return Err(ImportError::file(
            &path,
            "`rope_scaling` is not supported yet".into(),
        ));
    }
    let d_model = field_usize(&config, &path, "hidden_size")?;
    let n_heads = field_usize(&config, &path, "num_attention_heads")?;
    let n_kv_heads = config
        .get("num_key_value_heads")
        .and_then(Value::as_u64)
        .map_or(n_heads, |v| v as usize);
    let head_dim = config
        .get("head_dim")
        .and_then(Value::as_u64)
        .map_or(d_model / n_heads.max(1), |v| v as usize);
    let qkv_bias = match arch {
        Arch::Qwen2 => true,
        Arch::Llama => config
            .get("attention_bias")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let model = ModelConfig {
        arch,
        n_layers: field_usize(&config, &path, "num_hidden_layers")?,
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn: field_usize(&config, &path, "intermediate_size")?,
        vocab: field_usize(&config, &path, "vocab_size")?,
        max_ctx: config
            .get("max_position_embeddings")
            .and_then(Value::as_u64)
            .map_or(4096, |v| v as usize),
        rope_theta: field_f64(&config, "rope_theta", 10000.0),
        rms_eps: field_f64(&config, "rms_norm_eps", 1e-6),
        qkv_bias,
        tied_embeddings: config
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    model
        .validate()
        .map_err(|message| ImportError::file(&path, message))?;
    Ok(model)
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint, ImportError> {
        let config = read_config(dir)?;
        let index_path = dir.join(INDEX);
        let shard_names: Vec<String> = if index_path.exists() {
            let index = read_json(&index_path)?;
            let map = index
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| ImportError::file(&index_path, "missing `weight_map`".into()))?;
            let mut names: Vec<String> = Vec::new();
            for (tensor, shard) in map {
                let shard = shard.as_str().ok_or_else(|| {
                    ImportError::file(
                        &index_path,
                        format!("weight_map entry of `{tensor}` is {shard}, not a file name"),
                    )
                })?;
                // The shards are the checkpoint's own files: a name may not
                // leave its directory. (Links are followed: the Hugging Face
                // cache's snapshot directories are links into its blobs/.)
                ditto_files::resolve_inside(dir, Path::new(shard), Symlinks::Follow).map_err(
                    |why| {
                        ImportError::file(
                            &index_path,
                            format!("weight_map entry `{shard}` (of `{tensor}`) {why}"),
                        )
                    },
                )?;
                names.push(shard.to_string());
            }
            names.sort();
            names.dedup();
            names
        } else {
            vec!["model.safetensors".to_string()]
        };
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for (i, name) in shard_names.iter().enumerate() {
            let path = dir.join(name);
            let file = File::open(&path)
                .map_err(|e| ImportError::file(&path, format!("cannot open: {e}")))?;
            // SAFETY: the file is opened read-only and not modified while mapped.
            let mmap = unsafe { Mmap::map(&file) }
                .map_err(|e| ImportError::file(&path, format!("cannot map: {e}")))?;
            let tensors = SafeTensors::deserialize(&mmap).map_err(|e| {
                ImportError::file(&path, format!("not a valid safetensors file: {e}"))
            })?;
            for name in tensors.names() {
                index.insert(name.to_string(), i);
            }
            shards.push((path, mmap));
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            shards,
            index,
        })
    }

    /// Every file of the checkpoint the import reads, with what it is (for
    /// refusing an output that would overwrite one).
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        let mut files: Vec<(PathBuf, String)> = [
            ("config.json", "the checkpoint's config.json"),
            (INDEX, "the checkpoint's shard index"),
            ("tokenizer.json", "the checkpoint's tokenizer.json"),
            (
                "tokenizer_config.json",
                "the checkpoint's tokenizer_config.json",
            ),
            (
                "generation_config.json",
                "the checkpoint's generation_config.json",
            ),
        ]
        .into_iter()
        .map(|(name, what)| (self.dir.join(name), what.to_string()))
        .collect();
        files.extend(
            self.shards
                .iter()
                .map(|(path, _)| (path.clone(), "the checkpoint's weight file".to_string())),
        );
        files
    }

    /// The tensors of the model under their canonical names, checked for
    /// presence, shape and dtype; each converts to f32 when written.
    pub fn tensors(&self) -> Result<Vec<PendingTensor<'_>>, ImportError> {
        let mut pending = Vec::new();
        for (name, shape) in self.config.tensors() {
            let hf_name = hf_name(&name);
            let shard = *self.index.get(&hf_name).ok_or_else(|| {
                ImportError::file(
                    &self.dir,
                    format!("missing tensor `{hf_name}` (needed as {name})"),
                )
            })?;
            let (path, mmap) = &self.shards[shard];
            let tensors = SafeTensors::deserialize(mmap)
                .map_err(|e| ImportError::file(path, e.to_string()))?;
            let view = tensors
                .tensor(&hf_name)
                .map_err(|e| ImportError::file(path, e.to_string()))?;
            if view.shape() != shape.as_slice() {
                return Err(ImportError::file(
                    path,
                    format!(
                        "tensor `{hf_name}` has shape {:?}, expected {:?} from config.json",
                        view.shape(),
                        shape
                    ),
                ));
            }
            let dtype = view.dtype();
            if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
                return Err(ImportError::file(
                    path,
                    format!(
                        "tensor `{hf_name}` has unsupported dtype {dtype:?} (F32, F16, BF16 are)"
                    ),
                ));
            }
            let path = path.clone();
            pending.push(PendingTensor {
                name,
                shape,
                produce: Box::new(move || {
                    let tensors = SafeTensors::deserialize(mmap).map_err(|e| e.to_string())?;
                    let view = tensors
                        .tensor(&hf_name)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok(to_f32(dtype, view.data()))
                }),
            });
        }
        Ok(pending)
    }

    /// Special tokens and chat template, from `tokenizer_config.json`,
    /// `generation_config.json` and `tokenizer.json`.
    pub fn tokenizer_config(&self) -> Result<TokenizerConfig, ImportError> {
        let tokenizer_path = self.dir.join("tokenizer.json");
        let tokenizer = read_json(&tokenizer_path)?;
        let ids = token_ids(&tokenizer);
        let id_of = |content: &str| ids.get(content).copied();
        let config_path = self.dir.join("tokenizer_config.json");
        let config = if config_path.exists() {
            read_json(&config_path)?
        } else {
            Value::Null
        };
        let token_text = |key: &str| -> Option<String> {
            match config.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content")?.as_str().map(String::from),
                _ => None,
            }
        };
        let bos_token_id = token_text("bos_token").and_then(|t| id_of(&t));
        let mut eos_token_ids: Vec<u32> = token_text("eos_token")
            .and_then(|t| id_of(&t))
            .into_iter()
            .collect();
        let generation_path = self.dir.join("generation_config.json");
        if generation_path.exists() {
            let generation = read_json(&generation_path)?;
            match generation.get("eos_token_id") {
                Some(Value::Number(n)) => eos_token_ids.extend(n.as_u64().map(|v| v as u32)),
                Some(Value::Array(list)) => {
                    eos_token_ids.extend(list.iter().filter_map(|v| v.as_u64().map(|v| v as u32)))
                }
                _ => {}
            }
        }
        for end in [
            "<|endoftext|>",
            "<|im_end|>",
            "<|eot_id|>",
            "<|end_of_text|>",
        ] {
            eos_token_ids.extend(id_of(end));
        }
        eos_token_ids.sort_unstable();
        eos_token_ids.dedup();
        let fim = match (
            id_of("<|fim_prefix|>"),
            id_of("<|fim_middle|>"),
            id_of("<|fim_suffix|>"),
        ) {
            (Some(prefix), Some(middle), Some(suffix)) => Some(crate::FimTokens {
                prefix,
                middle,
                suffix,
            }),
            _ => None,
        };
        Ok(TokenizerConfig {
            bos_token_id,
            eos_token_ids,
            add_bos_token: config
                .get("add_bos_token")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            chat_template: config
                .get("chat_template")
                .and_then(Value::as_str)
                .map(String::from),
            fim,
        })
    }
}

/// Token text → id over the vocabulary and the added tokens.
fn token_ids(tokenizer: &Value) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    if let Some(vocab) = tokenizer.pointer("/model/vocab").and_then(Value::as_object) {
        for (token, id) in vocab {
            if let Some(id) = id.as_u64() {
                ids.insert(token.clone(), id as u32);
            }
        }
    }
    if let Some(added) = tokenizer.get("added_tokens").and_then(Value::as_array) {
        for token in added {
            if let (Some(content), Some(id)) = (
                token.get("content").and_then(Value::as_str),
                token.get("id").and_then(Value::as_u64),
            ) {
                ids.insert(content.to_string(), id as u32);
            }
        }
    }
    ids
}

/// Canonical (GGUF-style) name → Hugging Face name.
fn hf_name(canonical: &str) -> String {
    match canonical {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let rest = canonical.strip_prefix("blk.").expect("layer tensor");
    let (layer, tensor) = rest.split_once('.').expect("blk.N.name");
    let hf = match tensor {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        other => unreachable!("no Hugging Face name for {other}"),
    };
    format!("model.layers.{layer}.{hf}")
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => unreachable!("dtype {other:?} rejected when listing tensors"),
    }
}
