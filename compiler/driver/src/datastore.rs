//! `dittoc datastore build SOURCES... -o code.ds --tokenizer MODEL`: a
//! common code datastore (docs/speculation.md) — the code files of SOURCES,
//! walked as `--repo` walks a repository (`ditto_datastore::repo`),
//! tokenized with the model's tokenizer on every core, indexed in a suffix
//! array and written as a datastore file (`ditto_datastore::file`) carrying
//! the tokenizer's fingerprint, through a temporary file renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ditto_datastore::file::Summary;
use ditto_datastore::repo::{list_sources, read_text, Limits};
use ditto_datastore::SuffixStore;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Files (read whatever their extension) and directories (their code files).
    pub sources: Vec<PathBuf>,
    pub output: PathBuf,
    /// A model module (its `ditto.tokenizer` sidecar) or a `tokenizer.json`.
    pub tokenizer: PathBuf,
    pub limits: Limits,
}

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub files: usize,
    /// Files skipped: too large, unreadable, not UTF-8, or not tokenized.
    pub skipped: usize,
    /// The size limit ended the walk.
    pub truncated: bool,
    pub source_bytes: u64,
    /// Tokens of source text.
    pub tokens: u64,
    /// Seconds tokenizing, indexing (the suffix array), and in all.
    pub tokenize_seconds: f64,
    pub index_seconds: f64,
    pub seconds: f64,
    /// Bytes of the file written.
    pub index_bytes: u64,
}

impl Built {
    /// `code.ds: 1520 files (3 skipped), 24.1 MiB of source, 6204518 tokens in 31.2 s (tokenizing 12.0 s, indexing 18.9 s), 49.6 MiB of index`
    pub fn line(&self, output: &Path) -> String {
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        format!(
            "{}: {} file{}{}, {:.1} MiB of source, {} tokens in {:.1} s (tokenizing {:.1} s, indexing {:.1} s), {:.1} MiB of index{}",
            output.display(),
            self.files,
            if self.files == 1 { "" } else { "s" },
            match self.skipped {
                0 => String::new(),
                n => format!(" ({n} skipped)"),
            },
            mib(self.source_bytes),
            self.tokens,
            self.seconds,
            self.tokenize_seconds,
            self.index_seconds,
            mib(self.index_bytes),
            if self.truncated {
                " (stopped at the size limit: --max-total-mib)"
            } else {
                ""
            }
        )
    }
}

/// The tokenizer file `--tokenizer` names: a module's `ditto.tokenizer`
/// sidecar, or the file itself.
fn tokenizer_file(path: &Path) -> Result<PathBuf, String> {
    if path.extension().and_then(|e| e.to_str()) != Some("mlir") {
        return Ok(path.to_path_buf());
    }
    ditto_passes::registry::register();
    let context = ditto_ir::create_context().map_err(|e| e.to_string())?;
    let module = ditto_ir::parse_file(&context, path).map_err(|e| e.to_string())?;
    let sidecars = ditto_codegen::Sidecars::of(&module, path).map_err(|e| e.to_string())?;
    Ok(sidecars.tokenizer)
}

/// Builds the datastore `options` describe.
pub fn build(options: &BuildOptions) -> Result<Built, String> {
    let start = Instant::now();
    let tokenizer_path = tokenizer_file(&options.tokenizer)?;
    let json = std::fs::read(&tokenizer_path)
        .map_err(|e| format!("--tokenizer {}: cannot read: {e}", tokenizer_path.display()))?;
    let tokenizer = ditto_tokenizer_json::load(&json)
        .map_err(|e| format!("--tokenizer {}: {e}", tokenizer_path.display()))?;
    let fingerprint = ditto_contracts::payload::tokenizer_fingerprint(&json);

    let listing = list_sources(&options.sources, options.limits)?;
    // The output must not be one of the files read: the tokenizer, the
    // module, a source named, or (when it exists) a file found under one.
    let mut inputs: Vec<(&Path, &str)> = vec![
        (&options.tokenizer, "the tokenizer (--tokenizer)"),
        (&tokenizer_path, "the module's tokenizer"),
    ];
    inputs.extend(options.sources.iter().map(|s| (s.as_path(), "a source")));
    if options.output.exists() {
        inputs.extend(
            listing
                .files
                .iter()
                .map(|f| (f.path.as_path(), "a source file")),
        );
    }
    ditto_files::refuse_overwrite("-o", &options.output, &[(&options.output, "")], &inputs)
        .map_err(|e| e.to_string())?;
    if listing.files.is_empty() {
        return Err(format!(
            "no code files in {} (a directory's files are read when their extension is a code \
             extension, ditto_datastore::repo::CODE_EXTENSIONS; .gitignore is honoured)",
            options
                .sources
                .iter()
                .map(|s| s.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let progress = ProgressBar::new(listing.files.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files {elapsed}")
    {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.set_prefix("tokenizing");
    let tokenize_start = Instant::now();
    let documents: Vec<Option<(u64, Vec<u32>)>> = listing
        .files
        .par_iter()
        .map(|file| {
            let text = read_text(file);
            let tokens = text.as_ref().and_then(|text| {
                let encoding = tokenizer.encode(text.as_str(), false).ok()?;
                Some((text.len() as u64, encoding.get_ids().to_vec()))
            });
            progress.inc(1);
            tokens
        })
        .collect();
    progress.finish_and_clear();
    let tokenize_seconds = tokenize_start.elapsed().as_secs_f64();
    let skipped = listing.skipped + documents.iter().filter(|d| d.is_none()).count();
    let (source_bytes, documents): (Vec<u64>, Vec<Vec<u32>>) =
        documents.into_iter().flatten().unzip();
    let source_bytes = source_bytes.iter().sum();

    let files = documents.len() as u64;
    let index_start = Instant::now();
    let store = SuffixStore::from_documents(documents)
        .map_err(|e| format!("-o {}: {e}", options.output.display()))?;
    let index_seconds = index_start.elapsed().as_secs_f64();
    let summary = Summary {
        files,
        source_bytes,
    };

    let mut staged = ditto_files::Staged::new(&options.output).map_err(|e| e.to_string())?;
    let written = {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, staged.file());
        ditto_datastore::file::write(&mut out, &store, &fingerprint, summary)
            .and_then(|()| out.flush())
    };
    written.map_err(|e| format!("-o {}: cannot write: {e}", options.output.display()))?;
    staged.commit().map_err(|e| e.to_string())?;
    Ok(Built {
        files: summary.files as usize,
        skipped,
        truncated: listing.truncated,
        source_bytes,
        tokens: store.len() as u64 - summary.files,
        tokenize_seconds,
        index_seconds,
        seconds: start.elapsed().as_secs_f64(),
        index_bytes: ditto_datastore::file::file_bytes(store.len()),
    })
}
