//! Hugging Face checkpoints: `config.json`, `model.safetensors` (or shards
//! with `model.safetensors.index.json`), `tokenizer.json`,
//! `tokenizer_config.json`, `generation_config.json`.

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
};

use ditto_contracts::model::attr;
use ditto_files::Symlinks;
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tokenizers::Tokenizer;

use crate::{
    config::{limit, Arch, Keys, ModelConfig},
    sidecar::PendingTensor,
    ImportError, TokenizerConfig,
};

/// The index of a checkpoint in shards.
const INDEX: &str = "model.safetensors.index.json";

/// An opened checkpoint: its config and its tensors, mapped.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    /// What config.json left out that shapes the tensors (`num_key_value_heads`,
    /// `head_dim`) and the value taken instead, for messages.
    defaults: Vec<String>,
    shards: Vec<(PathBuf, Mmap)>,
    /// HF tensor name → shard index.
    index: HashMap<String, usize>,
}

fn read_json(path: &Path) -> Result<Value, ImportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        // The text up to the error names the key (`"rope_theta": I` of
        // Infinity, which Python writes and JSON does not have).
        let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
        let end = line
            .char_indices()
            .nth(e.column())
            .map_or(line.len(), |(i, _)| i);
        let start = line
            .char_indices()
            .rev()
            .filter(|&(i, _)| i < end)
            .nth(40)
            .map_or(0, |(i, _)| i);
        let near = line.get(start..end).unwrap_or("").trim();
        if near.is_empty() {
            ImportError::file(path, format!("invalid JSON: {e}"))
        } else {
            ImportError::file(path, format!("invalid JSON: {e} (here: `{near}`)"))
        }
    })
}

/// A JSON value in a few words, for messages: `the string "1e6"`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The fields of a JSON file's top-level object, read with the file's own
/// key names in every message.
struct Fields<'a> {
    path: &'a Path,
    json: &'a Value,
    /// Whether a `null` field is an absent one (for transformers, it is
    /// where the field's default is `None`); otherwise it is a value of the
    /// wrong type.
    null_is_absent: fn(&str) -> bool,
}

/// config.json's fields for which transformers takes `null` as "not set":
/// the KV heads and head width (derived), RoPE scaling and sliding windows
/// (off), and the flags read as false.
fn config_null_is_absent(key: &str) -> bool {
    matches!(
        key,
        "num_key_value_heads"
            | "head_dim"
            | "rope_scaling"
            | "sliding_window"
            | "architectures"
            | "attention_bias"
            | "mlp_bias"
            | "use_sliding_window"
            | "tie_word_embeddings"
    )
}

impl<'a> Fields<'a> {
    /// `json` must be an object; `null` fields are absent ones.
    fn new(path: &'a Path, json: &'a Value) -> Result<Fields<'a>, ImportError> {
        Self::with_nulls(path, json, |_| true)
    }

    fn with_nulls(
        path: &'a Path,
        json: &'a Value,
        null_is_absent: fn(&str) -> bool,
    ) -> Result<Fields<'a>, ImportError> {
        if !json.is_object() {
            return Err(ImportError::file(
                path,
                format!("is {}, not a JSON object", describe(json)),
            ));
        }
        Ok(Fields {
            path,
            json,
            null_is_absent,
        })
    }

    fn fail(&self, message: String) -> ImportError {
        ImportError::file(self.path, message)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.json
            .get(key)
            .filter(|v| !(v.is_null() && (self.null_is_absent)(key)))
    }

    fn wrong_type(&self, key: &str, value: &Value, expected: &str) -> ImportError {
        self.fail(format!(
            "`{key}` is {}, expected {expected}",
            describe(value)
        ))
    }

    /// An integer between 1 and the [`limit`] of the module attribute
    /// `attribute`.
    fn dim(&self, key: &str, attribute: &str) -> Result<Option<usize>, ImportError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let limit = limit(attribute);
        match value {
            Value::Number(n) if n.is_u64() || n.is_i64() => n
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| (1..=limit).contains(v))
                .map(Some)
                .ok_or_else(|| self.fail(format!("`{key}` = {n} is not between 1 and {limit}"))),
            _ => Err(self.wrong_type(key, value, "an integer")),
        }
    }

    fn required_dim(&self, key: &str, attribute: &str) -> Result<usize, ImportError> {
        self.dim(key, attribute)?
            .ok_or_else(|| self.fail(format!("missing `{key}`")))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(value) => Err(self.wrong_type(key, value, "a number")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(value) => Err(self.wrong_type(key, value, "true or false")),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(value) => Err(self.wrong_type(key, value, "a string")),
        }
    }
}

/// Reads `config.json` into a [`ModelConfig`]: every value type-checked
/// and bounded (by the module contract's limits, before anything is sized
/// by it), named by its key; the architecture, the activation and features
/// the emitted model does not have (RoPE scaling, sliding-window attention,
/// MLP biases) refused by name.
pub fn read_config(dir: &Path) -> Result<ModelConfig, ImportError> {
    read_config_and_defaults(dir).map(|(config, _)| config)
}

/// [`read_config`], and what config.json left out that shapes the tensors,
/// with the value taken instead.
fn read_config_and_defaults(dir: &Path) -> Result<(ModelConfig, Vec<String>), ImportError> {
    let path = dir.join("config.json");
    let json = read_json(&path)?;
    let config = Fields::with_nulls(&path, &json, config_null_is_absent)?;
    let mut defaults = Vec::new();
    let model_type = config
        .string("model_type")?
        .ok_or_else(|| config.fail("missing `model_type` (supported: llama, qwen2)".into()))?;
    let (arch, class) = match model_type {
        "llama" => (Arch::Llama, "LlamaForCausalLM"),
        "qwen2" => (Arch::Qwen2, "Qwen2ForCausalLM"),
        other => {
            return Err(config.fail(format!(
                "unknown architecture `{other}` (model_type); supported: llama, qwen2"
            )))
        }
    };
    if let Some(value) = config.get("architectures") {
        let names: Option<Vec<&str>> = value
            .as_array()
            .and_then(|list| list.iter().map(Value::as_str).collect());
        let Some(names) = names else {
            return Err(config.wrong_type("architectures", value, "a list of class names"));
        };
        if let Some(other) = names.iter().find(|n| !n.eq_ignore_ascii_case(class)) {
            return Err(config.fail(format!(
                "unsupported architecture `{other}` (architectures); model_type `{model_type}` \
                 is supported as {class}"
            )));
        }
    }
    if let Some(act) = config.string("hidden_act")? {
        if act != "silu" && act != "swish" {
            return Err(config.fail(format!(
                "`hidden_act` = `{act}` is not supported (the MLP is SwiGLU: silu)"
            )));
        }
    }
    if let Some(scaling) = config.get("rope_scaling") {
        let kind = ["rope_type", "type"]
            .iter()
            .find_map(|k| scaling.get(k).and_then(Value::as_str));
        if kind != Some("default") {
            return Err(config.fail(format!(
                "`rope_scaling` = {scaling}: RoPE scaling is not supported"
            )));
        }
    }
    if config.boolean("use_sliding_window")? == Some(true) {
        return Err(config.fail(
            "`use_sliding_window` = true: sliding-window attention is not supported".into(),
        ));
    }
    if config.boolean("mlp_bias")? == Some(true) {
        return Err(config.fail("`mlp_bias` = true: MLP biases are not supported".into()));
    }
    let keys = Keys::hf();
    let n_layers = config.required_dim(&keys.n_layers, attr::N_LAYERS)?;
    let d_model = config.required_dim(&keys.d_model, attr::D_MODEL)?;
    let n_heads = config.required_dim(&keys.n_heads, attr::N_HEADS)?;
    let n_kv_heads = match config.dim(&keys.n_kv_heads, attr::N_KV_HEADS)? {
        Some(n) => n,
        None => {
            defaults.push(format!(
                "no `{}`: taken as `{}` = {n_heads}",
                keys.n_kv_heads, keys.n_heads
            ));
            n_heads
        }
    };
    let head_dim = match config.dim(&keys.head_dim, attr::HEAD_DIM)? {
        Some(head_dim) => head_dim,
        None if d_model.is_multiple_of(n_heads) => {
            defaults.push(format!(
                "no `{}`: taken as `{}` / `{}` = {}",
                keys.head_dim,
                keys.d_model,
                keys.n_heads,
                d_model / n_heads
            ));
            d_model / n_heads
        }
        None => {
            return Err(config.fail(format!(
                "`{}` = {d_model} is not a multiple of `{}` = {n_heads} (and there is no `{}`)",
                keys.d_model, keys.n_heads, keys.head_dim
            )))
        }
    };
    let qkv_bias = match arch {
        Arch::Qwen2 => true,
        Arch::Llama => config.boolean("attention_bias")?.unwrap_or(false),
    };
    let model = ModelConfig {
        arch,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn: config.required_dim(&keys.ffn, attr::FFN)?,
        vocab: config.required_dim(&keys.vocab, attr::VOCAB)?,
        // transformers' defaults, where the class has its own.
        max_ctx: config
            .dim(&keys.max_ctx, attr::MAX_CTX)?
            .unwrap_or(match arch {
                Arch::Llama => 2048,
                Arch::Qwen2 => 32768,
            }),
        rope_theta: config.number(&keys.rope_theta)?.unwrap_or(10000.0),
        rms_eps: config.number(&keys.rms_eps)?.unwrap_or(1e-6),
        qkv_bias,
        tied_embeddings: config.boolean("tie_word_embeddings")?.unwrap_or(false),
    };
    model
        .validate_as(&keys)
        .map_err(|message| config.fail(message))?;
    Ok((model, defaults))
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint, ImportError> {
        let (config, defaults) = read_config_and_defaults(dir)?;
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
            defaults,
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

    /// The layer a Hugging Face tensor name `model.layers.N.…` belongs to,
    /// and the rest of its name.
    fn layer_of(name: &str) -> Option<(usize, &str)> {
        let (layer, rest) = name.strip_prefix("model.layers.")?.split_once('.')?;
        Some((layer.parse().ok()?, rest))
    }

    /// Refuses a checkpoint whose tensors do not have the layers
    /// `num_hidden_layers` says (checked before anything is sized by it),
    /// or that has layer tensors the model would not use: an unsupported
    /// feature (a bias the block has not) that would otherwise be dropped.
    fn check_layers(&self) -> Result<(), ImportError> {
        let config = self.dir.join("config.json");
        let n_layers = self.config.n_layers;
        let last = n_layers.saturating_sub(1);
        let probe = format!("model.layers.{last}.input_layernorm.weight");
        if !self.index.contains_key(&probe) {
            let layers = self
                .index
                .keys()
                .filter_map(|name| Self::layer_of(name))
                .map(|(layer, _)| layer.saturating_add(1))
                .max()
                .unwrap_or(0);
            return Err(ImportError::file(
                &config,
                format!(
                    "`num_hidden_layers` = {n_layers}, but there is no tensor `{probe}` (the \
                     checkpoint's tensors are of {layers} layers)"
                ),
            ));
        }
        let known: Vec<&str> = self
            .config
            .layer_tensors()
            .into_iter()
            .filter_map(|(name, _)| hf_layer_name(name))
            .collect();
        let mut names: Vec<&String> = self.index.keys().collect();
        names.sort();
        for name in names {
            let Some((layer, rest)) = Self::layer_of(name) else {
                continue;
            };
            if layer >= n_layers {
                return Err(ImportError::file(
                    &config,
                    format!(
                        "the checkpoint's tensor `{name}` is of layer {layer}, but \
                         `num_hidden_layers` = {n_layers}"
                    ),
                ));
            }
            // Old checkpoints store RoPE's inverse frequencies, which the
            // model computes from `rope_theta`.
            if !known.contains(&rest) && rest != "self_attn.rotary_emb.inv_freq" {
                return Err(ImportError::file(
                    &config,
                    format!(
                        "the checkpoint's tensor `{name}` is not one of a {} block's with this \
                         config.json (an unsupported feature)",
                        self.config.arch.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The tensors of the model under their canonical names, checked for
    /// presence, shape and dtype; each converts to f32 when written.
    pub fn tensors(&self) -> Result<Vec<PendingTensor<'_>>, ImportError> {
        self.check_layers()?;
        let mut pending = Vec::new();
        for (name, shape) in self.config.tensors() {
            let hf_name = hf_name(&name).ok_or_else(|| {
                ImportError::file(&self.dir, format!("no Hugging Face name for `{name}`"))
            })?;
            let (path, mmap) = self
                .index
                .get(&hf_name)
                .and_then(|&shard| self.shards.get(shard))
                .ok_or_else(|| {
                    ImportError::file(
                        &self.dir,
                        format!("missing tensor `{hf_name}` (needed as {name})"),
                    )
                })?;
            let tensors = SafeTensors::deserialize(mmap)
                .map_err(|e| ImportError::file(path, e.to_string()))?;
            let view = tensors
                .tensor(&hf_name)
                .map_err(|e| ImportError::file(path, e.to_string()))?;
            if view.shape() != shape.as_slice() {
                let defaults = if self.defaults.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.defaults.join("; "))
                };
                return Err(ImportError::file(
                    path,
                    format!(
                        "tensor `{hf_name}` has shape {:?}, expected {:?} from config.json{defaults}",
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
                    let fail = |message: String| ImportError::file(&path, message);
                    let tensors =
                        SafeTensors::deserialize(mmap).map_err(|e| fail(e.to_string()))?;
                    let view = tensors
                        .tensor(&hf_name)
                        .map_err(|e| fail(format!("tensor `{hf_name}`: {e}")))?;
                    to_f32(dtype, view.data()).ok_or_else(|| {
                        fail(format!(
                            "tensor `{hf_name}` has unsupported dtype {dtype:?}"
                        ))
                    })
                }),
            });
        }
        Ok(pending)
    }

    /// `tokenizer.json`, loaded as the executable will load it, and checked
    /// against the model: every id it can give (its vocabulary's and its
    /// added tokens') must have a row in the embedding (`vocab_size`).
    fn tokenizer(&self) -> Result<Tokenizer, ImportError> {
        let path = self.dir.join("tokenizer.json");
        let bytes = std::fs::read(&path)
            .map_err(|e| ImportError::file(&path, format!("cannot read: {e}")))?;
        let tokenizer =
            ditto_tokenizer_json::load(&bytes).map_err(|e| ImportError::file(&path, e.0))?;
        let vocab = self.config.vocab;
        let outside = |what: &str, token: &str, id: u32| {
            ImportError::file(
                &path,
                format!(
                    "{what} `{token}` has id {id}, outside the model's vocabulary of {vocab} \
                     (`vocab_size` in config.json)"
                ),
            )
        };
        // The ids the file gives its added tokens (the library numbers them
        // itself: a file whose ids are not those would tokenize unlike the
        // model it came with).
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::file(&path, format!("invalid JSON: {e}")))?;
        let declared = json.get("added_tokens").and_then(Value::as_array);
        for token in declared.into_iter().flatten() {
            let content = token.get("content").and_then(Value::as_str);
            let id = token.get("id").and_then(Value::as_u64);
            let (Some(content), Some(id)) = (content, id) else {
                return Err(ImportError::file(
                    &path,
                    format!("added token {token} has no `content` string or no `id` number"),
                ));
            };
            match u32::try_from(id) {
                Ok(id) if (id as usize) < vocab => {
                    let loaded = tokenizer.token_to_id(content);
                    if loaded != Some(id) {
                        return Err(ImportError::file(
                            &path,
                            format!(
                                "added token `{content}` has id {id}, but the tokenizer gives it \
                                 {} (an added token's id must follow the vocabulary's)",
                                loaded.map_or("none".into(), |i| i.to_string())
                            ),
                        ));
                    }
                }
                _ => {
                    return Err(ImportError::file(
                        &path,
                        format!(
                            "added token `{content}` has id {id}, outside the model's vocabulary \
                             of {vocab} (`vocab_size` in config.json)"
                        ),
                    ))
                }
            }
        }
        let mut added: Vec<_> = tokenizer.get_added_tokens_decoder().into_iter().collect();
        added.sort_by_key(|&(id, _)| id);
        if let Some((id, token)) = added.iter().find(|&&(id, _)| id as usize >= vocab) {
            return Err(outside("added token", &token.content, *id));
        }
        let model_vocab = tokenizer.get_vocab(false);
        if let Some((token, &id)) = model_vocab.iter().max_by_key(|&(_, &id)| id) {
            if id as usize >= vocab {
                return Err(outside("token", token, id));
            }
        }
        if tokenizer.get_vocab_size(true) == 0 {
            return Err(ImportError::file(&path, "has no tokens".into()));
        }
        Ok(tokenizer)
    }

    /// Special tokens and chat template, from `tokenizer_config.json`,
    /// `generation_config.json` and `tokenizer.json` (which is checked
    /// against the model's vocabulary first).
    pub fn tokenizer_config(&self) -> Result<TokenizerConfig, ImportError> {
        let tokenizer = self.tokenizer()?;
        let id_of = |content: &str| tokenizer.token_to_id(content);
        let config_path = self.dir.join("tokenizer_config.json");
        let json = if config_path.exists() {
            read_json(&config_path)?
        } else {
            Value::Object(Default::default())
        };
        let config = Fields::new(&config_path, &json)?;
        let token_text = |key: &str| -> Result<Option<&str>, ImportError> {
            match config.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => Ok(Some(s)),
                    _ => Err(config.fail(format!("`{key}` has no string `content`"))),
                },
                Some(value) => Err(config.wrong_type(key, value, "a token")),
            }
        };
        // A special token the tokenizer does not have would never be given
        // (BOS) or never end a generation (EOS).
        let special = |key: &str| -> Result<Option<u32>, ImportError> {
            let Some(text) = token_text(key)? else {
                return Ok(None);
            };
            id_of(text).map(Some).ok_or_else(|| {
                config.fail(format!(
                    "`{key}` is `{text}`, which is not a token of tokenizer.json"
                ))
            })
        };
        // Ids some files carry beside the tokens (not read otherwise).
        for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
            let ids: Vec<&Value> = match config.get(key) {
                None => Vec::new(),
                Some(Value::Array(list)) => list.iter().collect(),
                Some(one) => vec![one],
            };
            for id in ids {
                if id.as_u64().is_none_or(|v| v >= self.config.vocab as u64) {
                    return Err(config.fail(format!(
                        "`{key}` holds {}, not a token id below the model's vocabulary of {} \
                         (`vocab_size` in config.json)",
                        describe(id),
                        self.config.vocab
                    )));
                }
            }
        }
        let bos_token_id = special("bos_token")?;
        let mut eos_token_ids: Vec<u32> = special("eos_token")?.into_iter().collect();
        let generation_path = self.dir.join("generation_config.json");
        if generation_path.exists() {
            let json = read_json(&generation_path)?;
            let generation = Fields::new(&generation_path, &json)?;
            let ids: Vec<&Value> = match generation.get("eos_token_id") {
                None => Vec::new(),
                Some(Value::Array(list)) => list.iter().collect(),
                Some(one) => vec![one],
            };
            for id in ids {
                match id.as_u64().and_then(|v| u32::try_from(v).ok()) {
                    Some(v) if (v as usize) < self.config.vocab => eos_token_ids.push(v),
                    _ => {
                        return Err(generation.fail(format!(
                            "`eos_token_id` holds {}, not a token id below the model's \
                             vocabulary of {} (`vocab_size` in config.json)",
                            describe(id),
                            self.config.vocab
                        )))
                    }
                }
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
        // transformers also accepts a list of named templates.
        let chat_template = match config.get("chat_template") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(String::from),
            Some(value) => return Err(config.wrong_type("chat_template", value, "a string")),
        };
        Ok(TokenizerConfig {
            bos_token_id,
            eos_token_ids,
            add_bos_token: config.boolean("add_bos_token")?.unwrap_or(false),
            chat_template,
            fim,
        })
    }
}

/// Canonical (GGUF-style) name → Hugging Face name.
fn hf_name(canonical: &str) -> Option<String> {
    match canonical {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let (layer, tensor) = canonical.strip_prefix("blk.")?.split_once('.')?;
    Some(format!("model.layers.{layer}.{}", hf_layer_name(tensor)?))
}

/// A layer tensor's Hugging Face name relative to `model.layers.N.`, by its
/// canonical name relative to `blk.N.`.
fn hf_layer_name(tensor: &str) -> Option<&'static str> {
    Some(match tensor {
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
        _ => return None,
    })
}

/// The f32 values of `bytes` of a supported dtype (`None` for another).
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        bytes
            .chunks_exact(N)
            .filter_map(|b| <[u8; N]>::try_from(b).ok())
            .map(f)
            .collect()
    }
    Some(match dtype {
        Dtype::F32 => each(bytes, f32::from_le_bytes),
        Dtype::F16 => each(bytes, |b| half::f16::from_le_bytes(b).to_f32()),
        Dtype::BF16 => each(bytes, |b| half::bf16::from_le_bytes(b).to_f32()),
        _ => return None,
    })
}
