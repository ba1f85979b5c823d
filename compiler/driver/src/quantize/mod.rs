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
//!
//! | file | part |
//! |---|---|
//! | `mod.rs` | the options and the steps above, in order |
//! | `corpus.rs` | the calibration text from files and directories |
//! | `calibration.rs` | the calibration run (`--calibrate` of the f32 model) and the statistics file |
//! | `weights.rs` | reading the weights to quantize, assembling the output's weight file |

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
};

use ditto_dialects::codebook::Scheme;
use ditto_ir::melior::ir::{attribute::StringAttribute, operation::OperationMutLike};
use memmap2::Mmap;
use safetensors::SafeTensors;

mod calibration;
mod corpus;
mod weights;

pub use calibration::{BYTES_PER_TOKEN, DEFAULT_CALIBRATION_TOKENS};
pub use corpus::default_code_set;

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

/// Quantizes `options.input` into `options.output` and its sidecars.
/// Returns a one-line summary.
pub fn quantize_module(options: &QuantizeOptions) -> Result<String, String> {
    check_options(options)?;
    let stem = options.output.with_extension("");
    let with_suffix = |suffix: &str| {
        let mut name = stem.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };

    let context = ditto_ir::create_context().map_err(|e| e.to_string())?;
    let mut module = ditto_ir::parse_file(&context, &options.input).map_err(|e| e.to_string())?;
    let sidecars =
        ditto_codegen::Sidecars::of(&module, &options.input).map_err(|e| e.to_string())?;
    let weights_in = sidecars.weights.clone();
    let (weights_out, tokenizer_out, tokenizer_config_out) =
        ditto_import::sidecar_paths(&options.output);
    let (report_md, report_json) = (with_suffix(".report.md"), with_suffix(".report.json"));
    refuse_overwrites(
        options,
        &sidecars,
        &[
            (&options.output, ""),
            (&weights_out, "the output's weight file"),
            (&tokenizer_out, "the output's tokenizer"),
            (
                &tokenizer_config_out,
                "the output's tokenizer configuration",
            ),
            (&report_md, "the output's report"),
            (&report_json, "the output's report"),
        ],
    )?;

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
    let statistics = statistics(options, &with_suffix(".calibration"))?;

    let file = File::open(&weights_in)
        .map_err(|e| format!("{}: cannot open: {e}", weights_in.display()))?;
    // SAFETY: read-only mapping of a file nobody modifies while we read it.
    let mmap = unsafe { Mmap::map(&file) }
        .map_err(|e| format!("{}: cannot map: {e}", weights_in.display()))?;
    let source = SafeTensors::deserialize(&mmap)
        .map_err(|e| format!("{}: not a valid weight file: {e}", weights_in.display()))?;
    let weights: Vec<Vec<f32>> = targets
        .iter()
        .map(|t| weights::read_f32(&source, &weights_in, &t.name))
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
    let result = ditto_quantize::quantize_model(&tensors, &model_options(options))
        .map_err(|e| e.to_string())?;
    // Every output is staged beside its path and renamed into place once
    // all are written, the module last: a failure replaces none of them.
    let mut staged = vec![
        ditto_files::stage(&report_md, result.report.to_markdown()).map_err(|e| e.to_string())?,
        ditto_files::stage(
            &report_json,
            serde_json::to_string_pretty(&result.report)
                .map_err(|e| format!("{}: {e}", report_json.display()))?,
        )
        .map_err(|e| e.to_string())?,
    ];
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
    let entries = weights::output_entries(&used, &quantized, &source, &weights_in)?;
    let weights_staged = ditto_files::Staged::new(&weights_out).map_err(|e| e.to_string())?;
    safetensors::serialize_to_file(
        entries.iter().map(|(n, e)| (n.clone(), e)),
        None,
        weights_staged.path(),
    )
    .map_err(|e| format!("{}: cannot write: {e}", weights_out.display()))?;
    staged.push(weights_staged);
    for (from, to) in [
        (&sidecars.tokenizer, &tokenizer_out),
        (&sidecars.tokenizer_config, &tokenizer_config_out),
    ] {
        staged.push(ditto_files::stage_copy(from, to).map_err(|e| e.to_string())?);
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
    staged.push(
        ditto_files::stage(&options.output, format!("{}\n", module.as_operation()))
            .map_err(|e| e.to_string())?,
    );
    ditto_files::commit_all(staged).map_err(|e| e.to_string())?;
    Ok(summary(
        &quantized,
        count,
        bytes,
        &[&options.output, &weights_out],
        &report_md,
    ))
}

/// The most calibration tokens a run takes (16 Mi: about 60 hours of the
/// 0.5B model's f32 forward on two cores; 30 k take 6.5 minutes).
pub const MAX_CALIBRATION_TOKENS: usize = 1 << 24;

/// Refuses options that cannot work together or are out of range, before
/// any work ([`quantize_module`] does too); each error names the flag.
pub fn check_options(options: &QuantizeOptions) -> Result<(), String> {
    ditto_quantize::check_bits(options.bits).map_err(|e| e.to_string())?;
    if let Some(block) = options
        .block
        .filter(|&b| ditto_contracts::codebook::check_block(b).is_err())
    {
        return Err(format!(
            "--block must be a positive multiple of 8, got {block}"
        ));
    }
    // Bounds, before a calibration run is spent on them.
    for (flag, value) in [
        ("--bits-avg", options.bits_avg),
        ("--max-error", options.max_error),
    ] {
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("{flag} must be a positive number, got {v}"));
        }
    }
    // Without --tensor-bits, the widest candidate bounds every choice.
    let widest = ditto_quantize::Candidate::per_width()
        .iter()
        .map(|c| c.bits as f64 + 16.0 * (1u64 << c.bits) as f64 / c.block as f64)
        .fold(0.0, f64::max);
    if let Some(v) = options
        .bits_avg
        .filter(|&v| options.overrides.is_empty() && v > widest)
    {
        return Err(format!(
            "--bits-avg {v}: no width takes more than {widest} bits per weight (8-bit codes with their codebooks)"
        ));
    }
    if let Calibration::Texts { tokens, .. }
    | Calibration::Prose { tokens, .. }
    | Calibration::Random { tokens } = &options.calibration
    {
        if !(1..=MAX_CALIBRATION_TOKENS).contains(tokens) {
            return Err(format!(
                "--calib-tokens must be between 1 and {MAX_CALIBRATION_TOKENS}, got {tokens}"
            ));
        }
    }
    if let (Some(path), Calibration::None | Calibration::Stats(_)) =
        (&options.save_stats, &options.calibration)
    {
        return Err(format!(
            "--save-calib-stats {}: no calibration run to save (--calib-set none or --calib-stats)",
            path.display()
        ));
    }
    Ok(())
}

/// Refuses `outputs` (the module `-o` names and the files beside it), and
/// `--save-calib-stats`, when one is a file the run reads: the input module,
/// its sidecars, `--calib-stats`, a `--calib` file (not the files of a
/// `--calib` directory, which are read before anything is written).
fn refuse_overwrites(
    options: &QuantizeOptions,
    sidecars: &ditto_codegen::Sidecars,
    outputs: &[(&Path, &str)],
) -> Result<(), String> {
    let mut inputs: Vec<(&Path, &str)> = vec![(&options.input, "the input module")];
    inputs.extend(sidecars.inputs());
    match &options.calibration {
        Calibration::Stats(path) => inputs.push((path, "the statistics file (--calib-stats)")),
        Calibration::Texts { paths, .. } | Calibration::Prose { paths, .. } => inputs.extend(
            paths
                .iter()
                .filter(|p| p.is_file())
                .map(|p| (p.as_path(), "a calibration text (--calib)")),
        ),
        Calibration::None | Calibration::Random { .. } => {}
    }
    ditto_files::refuse_overwrite("-o", &options.output, outputs, &inputs)
        .map_err(|e| e.to_string())?;
    if let Some(stats) = &options.save_stats {
        let with_outputs: Vec<(&Path, &str)> = inputs
            .iter()
            .copied()
            .chain(outputs.iter().map(|&(path, what)| {
                (
                    path,
                    if what.is_empty() {
                        "the output module"
                    } else {
                        what
                    },
                )
            }))
            .collect();
        ditto_files::refuse_overwrite("--save-calib-stats", stats, &[(stats, "")], &with_outputs)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The statistics the calibration option asks for; a calibration run writes
/// them to `intermediate` (or `--save-calib-stats`), read back here.
fn statistics(
    options: &QuantizeOptions,
    intermediate: &Path,
) -> Result<calibration::Statistics, String> {
    Ok(match &options.calibration {
        Calibration::None => calibration::Statistics::new(),
        Calibration::Stats(path) => calibration::read_statistics(path)?,
        Calibration::Texts { .. } | Calibration::Prose { .. } | Calibration::Random { .. } => {
            // About 3 GB for a 0.5B model with XᵀX: unless asked for, an
            // intermediate beside the output (not in a /tmp that may be
            // memory), under a name of its own, removed (also on error) once
            // read.
            let (path, _remove) = match &options.save_stats {
                Some(path) => (path.clone(), None),
                None => {
                    let remove = ditto_files::scratch(intermediate, ".safetensors")
                        .map_err(|e| e.to_string())?;
                    (remove.to_path_buf(), Some(remove))
                }
            };
            calibration::run_calibration(options, &path)?;
            calibration::read_statistics(&path)?
        }
    })
}

/// The quantizer's options from the command line's.
fn model_options(options: &QuantizeOptions) -> ditto_quantize::ModelOptions {
    let bounded = options.max_error.is_some() || options.bits_avg.is_some();
    ditto_quantize::ModelOptions {
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
    }
}

/// The one line `dittoc quantize` prints: tensors, widths, bits per weight,
/// the files written.
fn summary(
    quantized: &HashMap<String, ditto_quantize::Quantized>,
    count: usize,
    bytes: usize,
    written: &[&Path],
    report: &Path,
) -> String {
    let widths: std::collections::BTreeMap<(u8, usize), usize> =
        quantized.values().fold(Default::default(), |mut m, q| {
            *m.entry((q.bits, q.block)).or_default() += 1;
            m
        });
    let widths: Vec<String> = widths
        .iter()
        .map(|((bits, block), n)| format!("{n}×{bits}-bit/{block}"))
        .collect();
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    format!(
        "quantized {} tensors ({} weights; {}): {:.3} bits per weight with codebooks → {} (report: {})",
        quantized.len(),
        count,
        widths.join(", "),
        8.0 * bytes as f64 / count.max(1) as f64,
        written.join(" + "),
        report.display()
    )
}
