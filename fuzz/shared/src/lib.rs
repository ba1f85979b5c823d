//! The bodies of dittoc's fuzz targets: one function per reader of files
//! that dittoc or the executables it builds are handed, each taking the
//! fuzzer's bytes and driving the reader the way the tools do.
//!
//! The cargo-fuzz crate in `fuzz/` (outside the main workspace: it needs
//! libFuzzer's compiler flags) calls these from its `fuzz_targets/*.rs`, and
//! `tests/replay.rs` runs every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through the same function in `cargo test`,
//! so the test command replays exactly what was fuzzed. Errors are the
//! expected outcome of most inputs; a target fails only by panicking (or
//! crashing), and some assert what the readers promise each other (noted
//! on each). See `docs/fuzzing.md`.
//!
//! Readers that only open paths get the bytes through a scratch file (or
//! directory), made for one run and removed after it, under `/dev/shm` when
//! it exists, so a run does not touch the disk.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ditto_eqsat::{Init, Kernel, RuleSet, SelectOptions, Term, Trans};

/// A target's body: the fuzzer's bytes in, a panic on failure.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and
/// `fuzz/regressions/`, and the binary under `fuzz/fuzz_targets/`) and its
/// body.
pub const TARGETS: &[(&str, Target)] = &[
    ("gguf", gguf),
    ("gguf_tokenizer", gguf_tokenizer),
    ("hf_config", hf_config),
    ("hf_checkpoint", hf_checkpoint),
    ("hf_tokenizer", hf_tokenizer),
    ("rules", rules),
    ("payload", payload),
    ("datastore", datastore),
];

/// The largest tensor (in elements) a target dequantizes or converts: the
/// input bounds the data anyway, this only keeps one run short.
const MAX_ELEMENTS: usize = 1 << 20;

// ---------------------------------------------------------------------------
// GGUF

/// `ditto_gguf::GgufFile::open` on the bytes as a file, then what `dittoc
/// import` reads from a GGUF besides the tokenizer: every metadata value
/// and tensor, the model configuration (`ditto_import::gguf::read_config`),
/// the duplicate-LM-head check, and the model's tensors, each dequantized.
///
/// Asserts that a dequantized tensor has as many values as elements.
pub fn gguf(data: &[u8]) {
    with_file("model.gguf", data, |path| {
        let Ok(file) = ditto_gguf::GgufFile::open(path) else {
            return;
        };
        let _ = (
            file.version(),
            file.alignment(),
            file.data_offset(),
            file.file_len(),
        );
        for (key, value) in file.metadata() {
            let _ = (key.len(), value.type_name(), value.to_string());
            let _ = (value.as_u64(), value.as_i64());
        }
        let _ = file.architecture();
        for key in ["block_count", "embedding_length", "context_length"] {
            let _ = file.arch_u32(key);
        }
        for t in file.tensors() {
            let _ = (t.shape(), t.n_bytes(), file.tensor_data(t));
            if t.n_elements() <= MAX_ELEMENTS {
                if let Ok(values) = file.dequantize(t) {
                    assert_eq!(values.len(), t.n_elements(), "tensor `{}`", t.name);
                }
            }
        }
        let Ok(mut config) = ditto_import::gguf::read_config(&file) else {
            return;
        };
        let mut embedding_source = "token_embd.weight";
        if !config.tied_embeddings {
            if let Ok(Some(d)) = ditto_import::gguf::duplicate_head(&file) {
                config.tied_embeddings = true;
                embedding_source = d.keep;
            }
        }
        if let Ok(pending) = ditto_import::gguf::tensors(&file, &config, embedding_source) {
            produce_all(pending);
        };
    });
}

/// The tokenizer conversion of `dittoc import` on a GGUF
/// (`ditto_gguf::tokenizer_json`, `ditto_gguf::tokenizer_config`).
///
/// Asserts that the JSON is JSON and that a configuration the import writes
/// is one the runtime reads. (Whether the `tokenizers` crate loads the JSON,
/// as the executable does, is not asked here: its regex compilation took 80%
/// of a run. `docs/fuzzing.md` says how the corpus was checked for it.)
pub fn gguf_tokenizer(data: &[u8]) {
    with_file("model.gguf", data, |path| {
        let Ok(file) = ditto_gguf::GgufFile::open(path) else {
            return;
        };
        if let Ok(json) = ditto_gguf::tokenizer_json(&file) {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
                panic!("tokenizer_json gave text that is not JSON: {e}");
            }
        }
        if let Ok(config) = ditto_gguf::tokenizer_config(&file) {
            runtime_reads_tokenizer_config(&config);
        }
    });
}

/// Whether the runtime's tokenizer (the `tokenizers` crate, as the
/// executable loads its tokenizer section) loads what
/// `ditto_gguf::tokenizer_json` makes of the GGUF `data`: `None` when the
/// conversion refuses the file, else the load's error, if any. Not a fuzz
/// target (too slow for one); for checking a corpus.
pub fn gguf_tokenizer_loads(data: &[u8]) -> Option<Result<(), String>> {
    let mut outcome = None;
    with_file("model.gguf", data, |path| {
        let Ok(file) = ditto_gguf::GgufFile::open(path) else {
            return;
        };
        let Ok(json) = ditto_gguf::tokenizer_json(&file) else {
            return;
        };
        outcome = Some(
            ditto_rt::tokenizer::Tokenizer::from_json(json.as_bytes())
                .map(|tokenizer| exercise_tokenizer(&tokenizer))
                .map_err(|e| e.to_string()),
        );
    });
    outcome
}

// ---------------------------------------------------------------------------
// Hugging Face checkpoints

/// `ditto_import::hf::read_config` on a directory whose `config.json` is the
/// bytes.
pub fn hf_config(data: &[u8]) {
    with_dir(&[("config.json", data)], |dir| {
        if let Ok(config) = ditto_import::hf::read_config(dir) {
            let _ = (config.validate(), config.dims().check());
        }
    });
}

/// Separates the files of one [`hf_checkpoint`] input.
pub const HF_SEPARATOR: &[u8] = b"\n#ditto-fuzz-file#\n";

/// The files of an [`hf_checkpoint`] input, in order; parts after these are
/// shards, named as transformers names them (`model-00001-of-00002.safetensors`).
pub const HF_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "model.safetensors.index.json",
];

/// Splits an [`hf_checkpoint`] input into the checkpoint's files: the parts
/// between [`HF_SEPARATOR`]s, named by [`HF_FILES`] and then as shards. An
/// empty part is a file that is not there.
pub fn hf_files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut parts = Vec::new();
    let mut rest = data;
    loop {
        match find(rest, HF_SEPARATOR) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + HF_SEPARATOR.len()..];
            }
            None => {
                parts.push(rest);
                break;
            }
        }
    }
    let shards = parts.len().saturating_sub(HF_FILES.len());
    parts
        .into_iter()
        .enumerate()
        .filter(|(_, bytes)| !bytes.is_empty())
        .map(|(i, bytes)| {
            let name = match HF_FILES.get(i) {
                Some(name) => name.to_string(),
                None => format!(
                    "model-{:05}-of-{shards:05}.safetensors",
                    i - HF_FILES.len() + 1
                ),
            };
            (name, bytes)
        })
        .collect()
}

/// Joins files into an [`hf_checkpoint`] input (the inverse of [`hf_files`]
/// for files named by [`HF_FILES`] or as shards, in that order).
pub fn hf_input(files: &[&[u8]]) -> Vec<u8> {
    files.join(HF_SEPARATOR)
}

/// What `dittoc import` reads of a Hugging Face checkpoint's weights, from
/// a directory made of the files [`hf_files`] finds in the bytes:
/// `Checkpoint::open` (config, shard index, every safetensors header), the
/// model's tensors (checked for shape and dtype), each converted to f32.
///
/// Asserts that a converted tensor has its shape's number of values.
pub fn hf_checkpoint(data: &[u8]) {
    let files = hf_files(data);
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    with_dir(&files, |dir| {
        let Ok(checkpoint) = ditto_import::hf::Checkpoint::open(dir) else {
            return;
        };
        let _ = checkpoint.files();
        if let Ok(pending) = checkpoint.tensors() {
            produce_all(pending);
        };
    });
}

/// What `dittoc import` reads of a Hugging Face checkpoint's tokenizer, from
/// a directory made as for [`hf_checkpoint`]: `Checkpoint::open`, then the
/// special tokens and chat template from `tokenizer.json`,
/// `tokenizer_config.json` and `generation_config.json`.
///
/// Asserts that a tokenizer configuration the import writes is one the
/// runtime reads.
pub fn hf_tokenizer(data: &[u8]) {
    let files = hf_files(data);
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    with_dir(&files, |dir| {
        let Ok(checkpoint) = ditto_import::hf::Checkpoint::open(dir) else {
            return;
        };
        if let Ok(config) = checkpoint.tokenizer_config() {
            runtime_reads_tokenizer_config(&config);
        }
    });
}

/// Runs every tensor's producer; a tensor it makes must have its shape's
/// number of values.
fn produce_all(pending: Vec<ditto_import::sidecar::PendingTensor<'_>>) {
    for t in pending {
        let n: usize = t.shape.iter().product();
        if n > MAX_ELEMENTS {
            continue;
        }
        if let Ok(values) = (t.produce)() {
            assert_eq!(
                values.len(),
                n,
                "tensor `{}` of shape {:?}",
                t.name,
                t.shape
            );
        }
    }
}

/// The configuration `dittoc import` writes as `model.tokenizer_config.json`
/// must be one the executable's runtime reads back.
fn runtime_reads_tokenizer_config(config: &ditto_gguf::TokenizerConfig) {
    let json = serde_json::to_vec_pretty(config).expect("plain data serializes");
    if let Err(e) = ditto_rt::tokenizer::TokenizerConfig::from_json(&json) {
        panic!(
            "the runtime cannot read the tokenizer configuration the import writes: {e}\n{}",
            String::from_utf8_lossy(&json)
        );
    }
}

/// What a run does with the tokenizer: a prompt encoded, the ids decoded
/// and streamed back.
fn exercise_tokenizer(tokenizer: &ditto_rt::tokenizer::Tokenizer) {
    if let Ok(ids) = tokenizer.encode("def f(x):\n    return x + 1  # é\u{1F600}") {
        let _ = tokenizer.decode(&ids);
    }
    let _ = tokenizer.decode(&[0, 1, 2, 3, u32::MAX]);
}

// ---------------------------------------------------------------------------
// Rule files

/// Terms the rules of a rule file that reads are tried on: a GEMV, a GEMM
/// with a bias, and an op no kernel implements.
const RULE_TERMS: &[&str] = &[
    "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %w (ix d0 d1)) (read %x (ix d1))))))",
    "(gen (ix d0 d1) (+ (acc (fill 0) (sum (ix d2) (* (read %x (ix d0 d2)) (read %w (ix d1 d2))))) (read %b (ix d1))))",
    "(gen (ix d0) (acc (fill 0) (sum (ix d1) (fn exp (* (read %a (ix d0 d1)) (read %x (ix d1)))))))",
];

/// A rule file (`dittoc --rules`, `ditto-select-kernels{rules=...}`):
/// `RuleSet::parse`, every diagnostic printed, then what kernel selection
/// does with a file that reads: the rules added after the built-in ones and
/// run on a few `linalg.generic` terms, under small saturation limits.
///
/// Asserts that the built-in rules alone still turn the GEMV term into a
/// GEMV (parsing a user file leaves them alone).
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let user = match RuleSet::parse("fuzz.rules", text) {
        Ok(user) => user,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (user.len(), user.rewrites().len());
    for rule in user.rules() {
        let _ = (rule.lhs.to_string(), rule.rhs.to_string());
    }
    let mut set = builtin_rules().clone();
    if let Err(e) = set.extend(user) {
        let _ = e.to_string();
        return;
    }
    let options = SelectOptions {
        limits: ditto_eqsat::Limits {
            iterations: 6,
            nodes: 2_000,
            time: std::time::Duration::from_millis(200),
        },
        explain: false,
    };
    for term in rule_terms() {
        let selection = ditto_eqsat::select_with(term, &set, &options);
        let _ = (selection.trace(), selection.rules_fired());
    }
    let builtin = ditto_eqsat::select(&rule_terms()[0], builtin_rules());
    assert_eq!(
        builtin.kernel,
        Some(Kernel::Gemv {
            alpha: 1.0,
            a: "%w".into(),
            trans: Trans::N,
            x: "%x".into(),
            beta: 0.0,
            y: Init::Zero,
        })
    );
}

fn builtin_rules() -> &'static RuleSet {
    static BUILTIN: OnceLock<RuleSet> = OnceLock::new();
    BUILTIN.get_or_init(RuleSet::builtin)
}

fn rule_terms() -> &'static [Term] {
    static TERMS: OnceLock<Vec<Term>> = OnceLock::new();
    TERMS.get_or_init(|| {
        RULE_TERMS
            .iter()
            .map(|t| t.parse().expect("the fuzz target's terms parse"))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// The executable's payload

/// The payload at the end of an executable: the trailer and manifest
/// (`ditto_contracts::payload::read_trailer`, on the bytes) and the
/// runtime's `Payload::open` (on the bytes as a file), then what a run
/// reads from an opened payload before it calls the model: every section,
/// every `weights_index` entry, the manifest against the shape compiled
/// into the code, the tokenizer configuration. (Not the tokenizer section:
/// the `tokenizers` crate's regex compilation would take most of a run.)
///
/// Asserts that `read_trailer` and `Payload::open` agree, and that a
/// payload's manifest matches the shape made from it.
pub fn payload(data: &[u8]) {
    use ditto_contracts::payload::read_trailer;
    use ditto_rt::payload::Payload;

    let parsed = read_trailer(data);
    if let Ok(manifest) = &parsed {
        let _ = manifest.trailer();
    }
    with_file("model", data, |path| {
        let opened = Payload::open(path);
        match (&parsed, &opened) {
            (Ok(manifest), Ok(payload)) => assert_eq!(manifest, payload.manifest()),
            (Err(_), Err(_)) => {}
            (parsed, opened) => panic!(
                "read_trailer and Payload::open disagree: {:?} vs {:?}",
                parsed.as_ref().map(|_| "a manifest"),
                opened
                    .as_ref()
                    .map(|_| "a payload")
                    .map_err(|e| e.to_string())
            ),
        }
        let Ok(payload) = opened else {
            return;
        };
        let manifest = payload.manifest();
        for name in manifest.sections.keys() {
            assert!(payload.section(name).is_some());
        }
        let weights = payload.weights();
        for entry in manifest.weights_index.values() {
            let _ = &weights[entry.offset as usize..(entry.offset + entry.bytes) as usize];
        }
        let model = payload.model();
        assert_eq!(model.check_compiled(&model.compiled_shape()), Ok(()));
        let _ = payload.tokenizer_json();
        let _ = ditto_rt::tokenizer::TokenizerConfig::from_json(payload.tokenizer_config_json());
    });
}

// ---------------------------------------------------------------------------
// Scratch files

/// Where scratch files go: `/dev/shm` when there is one.
fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Runs `f` on a fresh file named `name` holding `data`.
fn with_file(name: &str, data: &[u8], f: impl FnOnce(&Path)) {
    with_dir(&[(name, data)], |dir| f(&dir.join(name)));
}

/// Runs `f` on a fresh directory holding `files`.
fn with_dir(files: &[(&str, &[u8])], f: impl FnOnce(&Path)) {
    let dir = tempfile::Builder::new()
        .prefix("ditto-fuzz-")
        .tempdir_in(scratch_root())
        .expect("a scratch directory");
    for (name, data) in files {
        let mut file = std::fs::File::create(dir.path().join(name)).expect("a scratch file");
        file.write_all(data).expect("writing a scratch file");
    }
    f(dir.path());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Datastore files

/// The vocabulary the datastore target checks token ids against: above
/// the seeds' ids (their tokenizer is the payload seeds' shrunk one), so
/// that ids the fuzzer makes fall on both sides of it.
const DATASTORE_VOCAB: u32 = 300;

/// `ditto_datastore::file::read` as `--datastore` reads a file (the same
/// function reads the payload's section), expecting the fingerprint the
/// bytes themselves carry at its place in the header (bytes 16..48), so
/// that inputs get past that check to the rest; once with the sampled
/// check of the suffix array's order (the executable's), once with the
/// full one (dittoc's); then all again with both checksums recomputed.
///
/// Asserts that the full check accepts nothing the sampled one refuses;
/// that what the reader accepts is what the writer would write, byte for
/// byte (the format has one encoding of a store); that every token it
/// holds is in the vocabulary or a separator; and that retrieval from it,
/// for contexts taken from its own tokens, drafts in-vocabulary tokens
/// without a panic.
pub fn datastore(data: &[u8]) {
    datastore_as_is(data);
    // And with the checksums made right, so that edits reach the checks
    // behind them (the fuzzer cannot keep a CRC-32 right by itself).
    let mut sealed = data.to_vec();
    ditto_datastore::file::reseal(&mut sealed);
    datastore_as_is(&sealed);
}

fn datastore_as_is(data: &[u8]) {
    use ditto_datastore::file::{encode, read, Expect, Order};
    use ditto_datastore::suffix::{Query, SEPARATOR};

    let mut fingerprint = [0u8; 32];
    if let Some(carried) = data.get(16..48) {
        fingerprint.copy_from_slice(carried);
    }
    let expect = Expect {
        fingerprint: &fingerprint,
        vocab: DATASTORE_VOCAB,
        order: Order::Sampled,
    };
    let full = read(
        data,
        "fuzz.ds",
        Expect {
            order: Order::Full,
            ..expect
        },
    );
    let Ok(found) = read(data, "fuzz.ds", expect) else {
        assert!(
            full.is_err(),
            "the full check accepts what the sampled one refuses"
        );
        return;
    };
    assert_eq!(
        encode(&found.store, &found.fingerprint, found.summary),
        data,
        "an accepted file is not what the writer writes"
    );
    let tokens = found.store.tokens();
    assert!(tokens
        .iter()
        .all(|&t| t < DATASTORE_VOCAB || t == SEPARATOR));
    let query = Query {
        min_match: 1,
        ..Query::default()
    };
    for end in (0..tokens.len()).step_by(7).take(64) {
        let context = &tokens[end.saturating_sub(12)..end];
        if let Some(r) = found.store.retrieve(context, &query) {
            assert!(r.draft.tokens.iter().all(|&t| t < DATASTORE_VOCAB));
        }
    }
}
