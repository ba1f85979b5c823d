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
    Module,
};
use indicatif::{ProgressBar, ProgressStyle};
use memmap2::Mmap;
use safetensors::{tensor::View, Dtype, SafeTensors};

/// What to quantize and how.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub bits: u8,
    pub block: usize,
    pub seed: u64,
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

fn string_attribute(module: &Module, key: &str) -> Result<String, String> {
    module
        .as_operation()
        .attribute(key)
        .ok()
        .and_then(|a| StringAttribute::try_from(a).ok())
        .map(|s| s.value().to_string())
        .ok_or_else(|| format!("the module has no string attribute `{key}`"))
}

fn progress(len: usize, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Quantizes `options.input` into `options.output` and its sidecars.
/// Returns a one-line summary.
pub fn quantize_module(options: &QuantizeOptions) -> Result<String, String> {
    let scheme = Scheme {
        bits: options.bits,
        block: options.block as u64,
    };
    ditto_quantize::check_bits(options.bits).map_err(|e| e.to_string())?;
    if options.block == 0 || !options.block.is_multiple_of(8) {
        return Err(format!(
            "--block must be a positive multiple of 8, got {}",
            options.block
        ));
    }
    let context = ditto_ir::create_context().map_err(|e| e.to_string())?;
    let mut module = ditto_ir::parse_file(&context, &options.input).map_err(|e| e.to_string())?;
    let dir = options
        .input
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let sidecar = |key: &str| string_attribute(&module, key).map(|name| dir.join(name));
    let (weights_in, tokenizer_in, tokenizer_config_in) = (
        sidecar("ditto.weights")?,
        sidecar("ditto.tokenizer")?,
        sidecar("ditto.tokenizer_config")?,
    );

    ditto_codegen::pipeline::run_pipeline(
        &context,
        &mut module,
        "builtin.module(inline,symbol-dce)",
        false,
    )
    .map_err(|e| e.to_string())?;
    let targets = ditto_passes::quantize::quantizable_weights(&module).map_err(|e| e.message)?;

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

    let bar = progress(targets.len(), "quantizing");
    let mut quantized = HashMap::new();
    let (mut weights, mut bytes) = (0usize, 0usize);
    for target in &targets {
        bar.set_message(target.name.clone());
        let values = read_f32(&target.name)?;
        let q = ditto_quantize::quantize(
            &values,
            target.n,
            target.k,
            None,
            options.bits,
            options.block,
            options.seed,
        )
        .map_err(|e| format!("{}: {e}", target.name))?;
        weights += target.n * target.k;
        bytes += q.bytes();
        quantized.insert(target.name.clone(), q);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let plan: HashMap<String, Scheme> = targets.iter().map(|t| (t.name.clone(), scheme)).collect();
    ditto_passes::quantize::apply(&context, &module, &plan).map_err(|e| e.message)?;
    ditto_ir::verify(&context, &module, &options.output.display().to_string())
        .map_err(|e| e.to_string())?;

    // The output's weight file: every entry the rewritten module uses.
    let used = ditto_passes::weights::weights_used(&module).map_err(|e| e.message)?;
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for (name, _) in &used {
        if entries.iter().any(|(n, _)| n == name) {
            continue;
        }
        let entry = if let Some(tensor) = name.strip_suffix("#indices") {
            let q = &quantized[tensor];
            Entry {
                dtype: Dtype::U8,
                shape: vec![q.indices.len()],
                data: Cow::Owned(q.indices.clone()),
            }
        } else if let Some(tensor) = name.strip_suffix("#codebooks") {
            let q = &quantized[tensor];
            Entry {
                dtype: Dtype::F16,
                shape: vec![q.codebooks.len() >> q.bits, 1 << q.bits],
                data: Cow::Owned(q.codebooks.iter().flat_map(|c| c.to_le_bytes()).collect()),
            }
        } else {
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
    Ok(format!(
        "quantized {} tensors ({} weights) to {} bits, block {}: {:.3} bits per weight with codebooks → {} + {}",
        targets.len(),
        weights,
        options.bits,
        options.block,
        8.0 * bytes as f64 / weights.max(1) as f64,
        options.output.display(),
        weights_out.display()
    ))
}
