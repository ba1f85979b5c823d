//! `dittoc quantize model.mlir --bits 4 --block 256 -o q4.mlir`: a quantized
//! copy of a model module, self-contained beside its output (module, weight
//! file, tokenizer files), which `dittoc q4.mlir -O3` compiles like any other.
//!
//! 1. inline the layer functions, so that each weight sits beside its uses;
//! 2. pick the weights used only as product matrices (every linear layer,
//!    the LM head included unless it is also the embedding table);
//! 3. quantize each with per-block k-means codebooks (`ditto-quantize`);
//! 4. rewrite their `ditto.weight` ops into `codebook.weight` +
//!    `codebook.dequantize` (`ditto_passes::quantize`);
//! 5. write the weight file (f32 tensors as they were, quantized ones as
//!    `NAME#indices` / `NAME#codebooks`) and the module.

use ditto_contracts::calibration::{self, Stat};
use ditto_contracts::tensor_names::{self, Part};
use std::{
    borrow::Cow,
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
};

use ditto_dialects::codebook::Scheme;
use ditto_ir::melior::ir::{
    attribute::StringAttribute,
    operation::{OperationLike, OperationMutLike},
};
use memmap2::Mmap;
use safetensors::{tensor::View, Dtype, SafeTensors};

/// What to quantize and how.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    /// One width for every tensor (when no bound is given).
    pub bits: u8,
    /// Weights per codebook. `None`: 32·2^bits with one width (codebooks
    /// cost ½ bit per weight), and both of [`ditto_quantize::Candidate::per_width`]'s
    /// lengths per width under a bound.
    pub block: Option<usize>,
    /// Bound each tensor's relative output error; choose widths per tensor.
    pub max_error: Option<f64>,
    /// Bound the average bits per weight; choose widths per tensor.
    pub bits_avg: Option<f64>,
    /// Fixed (bits, block) for the tensors matching a name pattern; their
    /// bytes count against `bits_avg`.
    pub overrides: Vec<ditto_quantize::Override>,
    pub calibration: Calibration,
    /// Keep the calibration run's statistics in this file (for
    /// [`Calibration::Stats`] later); otherwise they are deleted once read.
    pub save_stats: Option<PathBuf>,
    /// Round with error compensation through the calibration's XᵀX (when
    /// the statistics hold it), else to the nearest centroid.
    pub compensate: bool,
    /// How each codebook is found: the exact optimum of its block's
    /// weighted k-means, k-means++ seeding from `seed` and Lloyd iterations,
    /// or by the width (exact up to 6 bits).
    pub kmeans: ditto_quantize::Method,
    pub seed: u64,
}

/// Where the activation statistics weighting the k-means come from.
#[derive(Clone, Debug)]
pub enum Calibration {
    /// None: every input channel weighs the same.
    None,
    /// Run the f32 model over about `tokens` tokens of these texts (files,
    /// or directories of code).
    Texts { paths: Vec<PathBuf>, tokens: usize },
    /// Run the f32 model over about `tokens` tokens of natural-language
    /// text: these files, or every file of these directories (a baseline for
    /// the effect of the set).
    Prose { paths: Vec<PathBuf>, tokens: usize },
    /// Random token ids (a baseline for the effect of the set).
    Random { tokens: usize },
    /// Statistics written earlier by an executable's `--calibrate`.
    Stats(PathBuf),
}

/// The default calibration set: Python's standard library sources on this
/// machine (the even-numbered files in sorted order; the odd ones are left
/// for evaluation), if they are there.
pub fn default_code_set() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3.") && p.join("json").is_dir())
        })
        .collect();
    found.sort();
    found.pop()
}

/// One tensor of the output weight file.
struct Entry<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl View for &Entry<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Code files a calibration directory contributes.
const CODE_EXTENSIONS: &[&str] = &[
    "py", "rs", "c", "h", "cc", "cpp", "hpp", "js", "ts", "go", "java", "rb", "sh", "lua",
];

/// What a calibration directory contributes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Code files only, and every other one (the rest stays out of
    /// calibration, for evaluation).
    Code,
    /// Every file.
    Prose,
}

/// Files under `path` (itself, if a file), sorted; for a directory, as
/// `kind` says.
fn calibration_files(path: &Path, kind: Kind) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: cannot read the calibration set: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if kind == Kind::Prose
                || p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| CODE_EXTENSIONS.contains(&e))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(match kind {
        Kind::Code => files.into_iter().step_by(2).collect(),
        Kind::Prose => files,
    })
}

/// The calibration text: the files of `paths`, in order, up to `budget` bytes.
fn corpus(paths: &[PathBuf], kind: Kind, budget: usize) -> Result<String, String> {
    let mut text = String::new();
    for path in paths {
        for file in calibration_files(path, kind)? {
            if text.len() >= budget {
                return Ok(text);
            }
            let Ok(content) = std::fs::read_to_string(&file) else {
                continue; // not UTF-8: not text to calibrate on
            };
            let room = budget - text.len();
            let mut cut = content.len().min(room);
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            text.push_str(&content[..cut]);
            text.push_str("\n\n");
        }
    }
    if text.is_empty() {
        return Err(match kind {
            Kind::Code => "the calibration set holds no readable code files",
            Kind::Prose => "the calibration set holds no readable text files",
        }
        .into());
    }
    Ok(text)
}

/// Calibration tokens when none are asked for.
pub const DEFAULT_CALIBRATION_TOKENS: usize = 4096;

/// Bytes of text taken per calibration token asked for: code runs at about
/// 3.6 bytes a token with this tokenizer, so the run sees a few more tokens
/// than asked (the executable counts them: `rows` in the statistics).
pub const BYTES_PER_TOKEN: usize = 4;

/// Compiles the f32 module, runs it over the calibration input with
/// `--calibrate`, and returns the statistics file it wrote.
fn run_calibration(options: &QuantizeOptions, stats: &Path) -> Result<(), String> {
    let work =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let exe = work.path().join("calibrate");
    ditto_codegen::compile(&ditto_codegen::CompileOptions {
        input: options.input.clone(),
        output: exe.clone(),
        emit: ditto_codegen::Emit::Exe,
        target: ditto_codegen::Target {
            opt_level: 2,
            cpu: None,
        },
        print_ir_after_all: false,
        rules: vec![],
        codebook_kernels: ditto_passes::select::CodebookKernel::Fused,
        runtime_lib: None,
    })
    .map_err(|e| format!("compiling the f32 model for calibration: {e}"))?;
    let mut command = std::process::Command::new(&exe);
    command.arg("--calibrate").arg(stats).args(["--ctx", "512"]);
    match &options.calibration {
        Calibration::Texts { paths, tokens } | Calibration::Prose { paths, tokens } => {
            let kind = match options.calibration {
                Calibration::Prose { .. } => Kind::Prose,
                _ => Kind::Code,
            };
            let text = corpus(paths, kind, tokens.saturating_mul(BYTES_PER_TOKEN))?;
            let file = work.path().join("corpus.txt");
            std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
            command.arg("-f").arg(file);
        }
        Calibration::Random { tokens } => {
            let ids: Vec<String> = random_ids(options, *tokens)?
                .iter()
                .map(|id| id.to_string())
                .collect();
            let file = work.path().join("ids.txt");
            std::fs::write(&file, ids.join(" ")).map_err(|e| format!("{}: {e}", file.display()))?;
            command.arg("--tokens-file").arg(file);
        }
        Calibration::None | Calibration::Stats(_) => unreachable!("nothing to run"),
    }
    let status = command
        .status()
        .map_err(|e| format!("running the calibration executable: {e}"))?;
    if !status.success() {
        return Err(format!("the calibration run failed ({status})"));
    }
    Ok(())
}

/// Uniform random token ids below the model's vocabulary, seeded.
fn random_ids(options: &QuantizeOptions, count: usize) -> Result<Vec<u32>, String> {
    let context = ditto_ir::create_context().map_err(|e| e.to_string())?;
    let module = ditto_ir::parse_file(&context, &options.input).map_err(|e| e.to_string())?;
    let vocab = module
        .as_operation()
        .attribute(ditto_contracts::model::attr::VOCAB)
        .ok()
        .and_then(|a| ditto_ir::melior::ir::attribute::IntegerAttribute::try_from(a).ok())
        .map(|i| i.value() as u64)
        .ok_or("the module has no `ditto.vocab`")?;
    let mut state = options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Ok((0..count)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % vocab) as u32
        })
        .collect())
}

/// One weight's calibration statistics.
struct Observed {
    /// E[x²] per input channel.
    importance: Vec<f32>,
    /// Sampled input rows [S, K].
    samples: Vec<f32>,
    /// XᵀX [K, K] over every input row (empty in statistics files written
    /// before it was recorded).
    xtx: Vec<f32>,
}

/// Per tensor name.
type Statistics = HashMap<String, Observed>;

fn read_statistics(path: &Path) -> Result<Statistics, String> {
    // Mapped, not read: with XᵀX the file is gigabytes, and each tensor is
    // converted to f32 from the mapping once.
    let handle = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: read-only mapping of a file nobody modifies while we read it.
    let bytes = unsafe { Mmap::map(&handle) }
        .map_err(|e| format!("{}: cannot map: {e}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{}: not a statistics file: {e}", path.display()))?;
    let floats = |name: &str| -> Option<Vec<f32>> {
        let view = file.tensor(name).ok()?;
        (view.dtype() == Dtype::F32).then(|| {
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    };
    let mut stats = HashMap::new();
    for name in file.names() {
        let Some((tensor, Stat::SumSq)) = calibration::split(name) else {
            continue;
        };
        let (Some(sumsq), Some(rows), Some(samples)) = (
            floats(name),
            floats(&calibration::key(tensor, Stat::Rows)),
            floats(&calibration::key(tensor, Stat::Samples)),
        ) else {
            return Err(format!(
                "{}: incomplete statistics for {tensor}",
                path.display()
            ));
        };
        let rows = rows.first().copied().unwrap_or(0.0).max(1.0);
        let importance = sumsq.iter().map(|s| s / rows).collect();
        let xtx = floats(&calibration::key(tensor, Stat::Xtx)).unwrap_or_default();
        if !xtx.is_empty() && xtx.len() != sumsq.len() * sumsq.len() {
            return Err(format!(
                "{}: {tensor}.xtx holds {} values, not {}² for its {} input channels",
                path.display(),
                xtx.len(),
                sumsq.len(),
                sumsq.len()
            ));
        }
        stats.insert(
            tensor.to_string(),
            Observed {
                importance,
                samples,
                xtx,
            },
        );
    }
    Ok(stats)
}

/// Quantizes `options.input` into `options.output` and its sidecars.
/// Returns a one-line summary.
pub fn quantize_module(options: &QuantizeOptions) -> Result<String, String> {
    ditto_quantize::check_bits(options.bits).map_err(|e| e.to_string())?;
    if let Some(block) = options
        .block
        .filter(|&b| ditto_contracts::codebook::check_block(b).is_err())
    {
        return Err(format!(
            "--block must be a positive multiple of 8, got {block}"
        ));
    }
    if let (Some(path), Calibration::None | Calibration::Stats(_)) =
        (&options.save_stats, &options.calibration)
    {
        return Err(format!(
            "--save-calib-stats {}: no calibration run to save (--calib-set none or --calib-stats)",
            path.display()
        ));
    }
    let stem = options.output.with_extension("");
    let with_suffix = |suffix: &str| {
        let mut name = stem.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };

    let context = ditto_ir::create_context().map_err(|e| e.to_string())?;
    let mut module = ditto_ir::parse_file(&context, &options.input).map_err(|e| e.to_string())?;
    let dir = options
        .input
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let sidecar = |key: &str| {
        ditto_codegen::string_attribute(&module, key)
            .map(|name| dir.join(name))
            .map_err(|e| e.to_string())
    };
    let (weights_in, tokenizer_in, tokenizer_config_in) = (
        sidecar("ditto.weights")?,
        sidecar("ditto.tokenizer")?,
        sidecar("ditto.tokenizer_config")?,
    );

    ditto_ir::run_pipeline(
        &context,
        &mut module,
        "builtin.module(inline,symbol-dce)",
        false,
    )
    .map_err(|e| e.to_string())?;
    let targets =
        ditto_passes::quantize::quantizable_weights(&module).map_err(|e| e.to_string())?;
    if targets.is_empty() {
        return Err(format!(
            "{}: no f32 weight matrices left to quantize (is it quantized already?)",
            options.input.display()
        ));
    }
    let statistics = match &options.calibration {
        Calibration::None => Statistics::new(),
        Calibration::Stats(path) => read_statistics(path)?,
        Calibration::Texts { .. } | Calibration::Prose { .. } | Calibration::Random { .. } => {
            // About 3 GB for a 0.5B model with XᵀX: an intermediate unless
            // asked for, removed (also on error) once read.
            let (path, _remove) = match &options.save_stats {
                Some(path) => (path.clone(), None),
                None => {
                    let path = with_suffix(".calibration.safetensors");
                    let remove = tempfile::TempPath::try_from_path(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    (path, Some(remove))
                }
            };
            run_calibration(options, &path)?;
            read_statistics(&path)?
        }
    };

    let file = File::open(&weights_in)
        .map_err(|e| format!("{}: cannot open: {e}", weights_in.display()))?;
    // SAFETY: read-only mapping of a file nobody modifies while we read it.
    let mmap = unsafe { Mmap::map(&file) }
        .map_err(|e| format!("{}: cannot map: {e}", weights_in.display()))?;
    let source = SafeTensors::deserialize(&mmap)
        .map_err(|e| format!("{}: not a valid weight file: {e}", weights_in.display()))?;
    let read_f32 = |name: &str| -> Result<Vec<f32>, String> {
        let view = source
            .tensor(name)
            .map_err(|_| format!("{}: no tensor \"{name}\"", weights_in.display()))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!("{}: \"{name}\" is not f32", weights_in.display()));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let weights: Vec<Vec<f32>> = targets
        .iter()
        .map(|t| read_f32(&t.name))
        .collect::<Result<_, _>>()?;
    let tensors: Vec<ditto_quantize::Tensor> = targets
        .iter()
        .zip(&weights)
        .map(|(t, w)| {
            let stats = statistics.get(&t.name);
            ditto_quantize::Tensor {
                name: &t.name,
                n: t.n,
                k: t.k,
                weights: w,
                importance: stats.map(|s| s.importance.as_slice()),
                activations: stats
                    .map(|s| s.samples.as_slice())
                    .filter(|s| !s.is_empty()),
                hessian: stats
                    .map(|s| s.xtx.as_slice())
                    .filter(|h| options.compensate && !h.is_empty()),
            }
        })
        .collect();
    let bounded = options.max_error.is_some() || options.bits_avg.is_some();
    let model_options = ditto_quantize::ModelOptions {
        candidates: match (bounded, options.block) {
            (true, Some(block)) => ditto_quantize::Candidate::all_bits(block),
            (true, None) => ditto_quantize::Candidate::per_width(),
            (false, block) => vec![ditto_quantize::Candidate {
                bits: options.bits,
                block: block.unwrap_or(32 << options.bits),
            }],
        },
        constraints: ditto_quantize::Constraints {
            max_error: options.max_error,
            bits_avg: options.bits_avg,
        },
        overrides: options.overrides.clone(),
        seed: options.seed,
        kmeans: ditto_quantize::KmeansOptions {
            method: options.kmeans,
            ..Default::default()
        },
        progress: true,
    };
    let result =
        ditto_quantize::quantize_model(&tensors, &model_options).map_err(|e| e.to_string())?;
    let report_md = with_suffix(".report.md");
    let report_json = with_suffix(".report.json");
    std::fs::write(&report_md, result.report.to_markdown())
        .map_err(|e| format!("{}: {e}", report_md.display()))?;
    std::fs::write(
        &report_json,
        serde_json::to_string_pretty(&result.report).expect("plain data"),
    )
    .map_err(|e| format!("{}: {e}", report_json.display()))?;
    let quantized: HashMap<String, ditto_quantize::Quantized> = targets
        .iter()
        .map(|t| t.name.clone())
        .zip(result.tensors)
        .collect();
    let count: usize = targets.iter().map(|t| t.n * t.k).sum();
    let bytes: usize = quantized.values().map(|q| q.bytes()).sum();

    let plan: HashMap<String, Scheme> = quantized
        .iter()
        .map(|(name, q)| {
            (
                name.clone(),
                Scheme {
                    bits: q.bits,
                    block: q.block as u64,
                },
            )
        })
        .collect();
    ditto_passes::quantize::apply(&context, &module, &plan).map_err(|e| e.to_string())?;
    ditto_ir::verify(&context, &module, &options.output.display().to_string())
        .map_err(|e| e.to_string())?;

    // The output's weight file: every entry the rewritten module uses.
    let used = ditto_passes::weights::weights_used(&module).map_err(|e| e.to_string())?;
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for ditto_passes::weights::WeightUse { name, .. } in &used {
        if entries.iter().any(|(n, _)| n == name) {
            continue;
        }
        let fresh = tensor_names::split(name)
            .and_then(|(tensor, part)| Some((quantized.get(tensor)?, part)));
        let entry = if let Some((q, part)) = fresh {
            match part {
                Part::Indices => Entry {
                    dtype: Dtype::U8,
                    shape: vec![q.indices.len()],
                    data: Cow::Owned(q.indices.clone()),
                },
                Part::Codebooks => Entry {
                    dtype: Dtype::F16,
                    shape: vec![q.codebooks.len() >> q.bits, 1 << q.bits],
                    data: Cow::Owned(q.codebooks.iter().flat_map(|c| c.to_le_bytes()).collect()),
                },
            }
        } else {
            // f32 tensors, and codebook tensors the input already had.
            let view = source
                .tensor(name)
                .map_err(|_| format!("{}: no tensor \"{name}\"", weights_in.display()))?;
            Entry {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data: Cow::Borrowed(view.data()),
            }
        };
        entries.push((name.clone(), entry));
    }
    let (weights_out, tokenizer_out, tokenizer_config_out) =
        ditto_import::sidecar_paths(&options.output);
    safetensors::serialize_to_file(
        entries.iter().map(|(n, e)| (n.clone(), e)),
        None,
        &weights_out,
    )
    .map_err(|e| format!("{}: cannot write: {e}", weights_out.display()))?;
    for (from, to) in [
        (&tokenizer_in, &tokenizer_out),
        (&tokenizer_config_in, &tokenizer_config_out),
    ] {
        if from != to {
            std::fs::copy(from, to)
                .map_err(|e| format!("{}: cannot copy to {}: {e}", from.display(), to.display()))?;
        }
    }
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for (key, path) in [
        ("ditto.weights", &weights_out),
        ("ditto.tokenizer", &tokenizer_out),
        ("ditto.tokenizer_config", &tokenizer_config_out),
    ] {
        module
            .as_operation_mut()
            .set_attribute(key, StringAttribute::new(&context, &file_name(path)).into());
    }
    std::fs::write(&options.output, format!("{}\n", module.as_operation()))
        .map_err(|e| format!("{}: cannot write: {e}", options.output.display()))?;
    let widths: std::collections::BTreeMap<(u8, usize), usize> =
        quantized.values().fold(Default::default(), |mut m, q| {
            *m.entry((q.bits, q.block)).or_default() += 1;
            m
        });
    let widths: Vec<String> = widths
        .iter()
        .map(|((bits, block), n)| format!("{n}×{bits}-bit/{block}"))
        .collect();
    Ok(format!(
        "quantized {} tensors ({} weights; {}): {:.3} bits per weight with codebooks → {} + {} (report: {})",
        targets.len(),
        count,
        widths.join(", "),
        8.0 * bytes as f64 / count.max(1) as f64,
        options.output.display(),
        weights_out.display(),
        report_md.display()
    ))
}
