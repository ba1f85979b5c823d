//! `dittoc import`: a Hugging Face checkpoint directory or a GGUF file becomes
//! `model.mlir` plus its sidecars (docs/contracts.md §1):
//!
//! 1. read the hyper-parameters ([`hf::read_config`], [`gguf::read_config`]);
//! 2. write every tensor as f32 to `model.weights` ([`sidecar::write`]);
//! 3. write the tokenizer and its special tokens;
//! 4. build the transformer as an MLIR module ([`emit::emit_module`]),
//!    verify it, and write it in MLIR's printed form.
//!
//! An output that is one of the source's files (by path or by identity:
//! hard and symbolic links) is refused before anything is written. Each
//! output is written to a temporary file beside it, and all are renamed
//! into place (the module last) only once every one is complete
//! (`ditto-files`): a failed or interrupted import leaves the files that were
//! there before as they were.

use std::path::{Path, PathBuf};

pub mod config;
pub mod emit;
pub mod gguf;
pub mod hf;
pub mod sidecar;

pub use config::{Arch, Keys, ModelConfig};
pub use ditto_gguf::{FimTokens, TokenizerConfig};

/// An import failure, naming the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A GGUF reader's error, which names its file itself.
    #[error(transparent)]
    Gguf(#[from] ditto_gguf::GgufError),
    #[error(transparent)]
    Mlir(#[from] ditto_ir::MlirError),
    #[error(transparent)]
    Files(#[from] ditto_files::FileError),
}

impl ImportError {
    pub fn file(path: &Path, message: String) -> Self {
        ImportError::File {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// What an import wrote.
#[derive(Debug)]
pub struct Imported {
    pub config: ModelConfig,
    pub module: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    pub tokenizer_config: PathBuf,
    /// What the import decided that the user should hear about (a tied LM
    /// head found in a GGUF), one line each.
    pub notes: Vec<String>,
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Import a GGUF's `output.weight` that is a second quantization of its
    /// `token_embd.weight` ([`gguf::duplicate_head`]) once, as tied
    /// embeddings, from the more precise copy. On by default.
    pub tie_duplicate_head: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            tie_duplicate_head: true,
        }
    }
}

/// The sidecar paths that belong to `module` (`x.mlir` → `x.weights`, ...).
pub fn sidecar_paths(module: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let stem = module.with_extension("");
    let with = |suffix: &str| {
        let mut name = stem.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    (
        with(".weights"),
        with(".tokenizer.json"),
        with(".tokenizer_config.json"),
    )
}

/// Imports `source` (an HF checkpoint directory or a `.gguf` file) to
/// `module` and its sidecars, with the default [`ImportOptions`].
pub fn import(source: &Path, module: &Path) -> Result<Imported, ImportError> {
    import_with(source, module, &ImportOptions::default())
}

/// [`import`] with `options`.
pub fn import_with(
    source: &Path,
    module: &Path,
    options: &ImportOptions,
) -> Result<Imported, ImportError> {
    let mut notes = Vec::new();
    let (weights, tokenizer, tokenizer_config) = sidecar_paths(module);
    let outputs = [
        (module, ""),
        (weights.as_path(), "the module's weight file"),
        (tokenizer.as_path(), "the module's tokenizer"),
        (
            tokenizer_config.as_path(),
            "the module's tokenizer configuration",
        ),
    ];
    // Every output goes to a temporary file first, committed (the module
    // last) once all are written: a failure replaces none of them.
    let mut staged = Vec::new();
    let config = if source.is_dir() {
        let checkpoint = hf::Checkpoint::open(source)?;
        let inputs = checkpoint.files();
        let inputs: Vec<(&Path, &str)> = inputs
            .iter()
            .map(|(p, what)| (p.as_path(), what.as_str()))
            .collect();
        ditto_files::refuse_overwrite("-o", module, &outputs, &inputs)?;
        let tokens = checkpoint.tokenizer_config()?;
        let pending = checkpoint.tensors()?;
        staged.push(sidecar::write(&weights, pending)?);
        staged.push(ditto_files::stage_copy(
            &source.join("tokenizer.json"),
            &tokenizer,
        )?);
        staged.push(ditto_files::stage(&tokenizer_config, to_json(&tokens))?);
        checkpoint.config
    } else if source.is_file() {
        ditto_files::refuse_overwrite("-o", module, &outputs, &[(source, "the input GGUF file")])?;
        let file = ditto_gguf::GgufFile::open(source)?;
        let mut config = gguf::read_config(&file)?;
        let mut embedding_source = "token_embd.weight";
        if options.tie_duplicate_head && !config.tied_embeddings {
            if let Some(d) = gguf::duplicate_head(&file)? {
                config.tied_embeddings = true;
                embedding_source = d.keep;
                notes.push(format!(
                    "output.weight ({}) is token_embd.weight ({}) quantized again (they differ by \
                     {:.2}× their quantization noise): imported once, tied, from {} \
                     (--separate-lm-head keeps both)",
                    d.head_type, d.embedding_type, d.noise_ratio, d.keep
                ));
            }
        }
        let pending = gguf::tensors(&file, &config, embedding_source)?;
        let tokenizer_json = ditto_gguf::tokenizer_json(&file)?;
        let tokens = gguf::tokenizer_config(&file, &config)?;
        staged.push(sidecar::write(&weights, pending)?);
        staged.push(ditto_files::stage(&tokenizer, tokenizer_json)?);
        staged.push(ditto_files::stage(&tokenizer_config, to_json(&tokens))?);
        config
    } else {
        return Err(ImportError::file(
            source,
            "no such file or directory (expected a Hugging Face checkpoint directory or a .gguf file)".into(),
        ));
    };

    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let sidecars = emit::Sidecars {
        weights: file_name(&weights),
        tokenizer: file_name(&tokenizer),
        tokenizer_config: file_name(&tokenizer_config),
    };
    let printed = emit_verified(&config, &sidecars, &module.display().to_string())?;
    staged.push(ditto_files::stage(module, printed)?);
    ditto_files::commit_all(staged)?;
    Ok(Imported {
        config,
        module: module.to_path_buf(),
        weights,
        tokenizer,
        tokenizer_config,
        notes,
    })
}

/// Emits the module of `config`, verifies it (`name` is the file it is
/// for, in diagnostics) and returns MLIR's printed form.
pub fn emit_verified(
    config: &ModelConfig,
    sidecars: &emit::Sidecars,
    name: &str,
) -> Result<String, ImportError> {
    let context = ditto_ir::create_context()?;
    let module = emit::emit_module(&context, config, sidecars);
    ditto_ir::verify(&context, &module, name)?;
    Ok(format!("{}\n", module.as_operation()))
}

fn to_json(config: &TokenizerConfig) -> String {
    serde_json::to_string_pretty(config).expect("plain data serializes")
}
