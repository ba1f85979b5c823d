//! The activation statistics that weight the k-means: gathered by running
//! the f32 model with `--calibrate` over a corpus or random ids, or read
//! from a statistics file (`ditto_contracts::calibration`).

use std::{collections::HashMap, fs::File, path::Path};

use ditto_contracts::calibration::{self, Stat};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::{
    corpus::{corpus, Kind},
    Calibration, QuantizeOptions,
};

/// Calibration tokens when none are asked for.
pub const DEFAULT_CALIBRATION_TOKENS: usize = 4096;

/// Bytes of text taken per calibration token asked for: code runs at about
/// 3.6 bytes a token with this tokenizer, so the run sees a few more tokens
/// than asked (the executable counts them: `rows` in the statistics).
pub const BYTES_PER_TOKEN: usize = 4;

/// Compiles the f32 module, runs it over the calibration input with
/// `--calibrate`, and returns the statistics file it wrote.
pub(super) fn run_calibration(options: &QuantizeOptions, stats: &Path) -> Result<(), String> {
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
        datastore: None,
    })
    .map_err(|e| format!("compiling the f32 model for calibration: {e}"))?;
    let mut command = std::process::Command::new(&exe);
    // Windows of 512 tokens, the executable's default (the model's context
    // when that is shorter; an explicit --ctx beyond it is an error there).
    command.arg("--calibrate").arg(stats);
    match &options.calibration {
        Calibration::Texts { paths, tokens } | Calibration::Prose { paths, tokens } => {
            let kind = match options.calibration {
                Calibration::Prose { .. } => Kind::Prose,
                _ => Kind::Code,
            };
            let text = corpus(paths, kind, tokens.saturating_mul(BYTES_PER_TOKEN))?;
            let file = work.path().join("corpus.txt");
            ditto_files::write(&file, text).map_err(|e| e.to_string())?;
            command.arg("-f").arg(file);
        }
        Calibration::Random { tokens } => {
            let ids: Vec<String> = random_ids(options, *tokens)?
                .iter()
                .map(|id| id.to_string())
                .collect();
            let file = work.path().join("ids.txt");
            ditto_files::write(&file, ids.join(" ")).map_err(|e| e.to_string())?;
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
    let vocab = ditto_ir::integer_attribute(&module, ditto_contracts::model::attr::VOCAB)
        .map_err(|e| e.to_string())?;
    let vocab = u64::try_from(vocab)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            format!(
                "the module's `ditto.vocab` is {vocab}: random calibration ids need a vocabulary"
            )
        })?;
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
pub(super) struct Observed {
    /// E[x²] per input channel.
    pub importance: Vec<f32>,
    /// Sampled input rows [S, K].
    pub samples: Vec<f32>,
    /// XᵀX [K, K] over every input row (empty in statistics files written
    /// before it was recorded).
    pub xtx: Vec<f32>,
}

/// Per tensor name.
pub(super) type Statistics = HashMap<String, Observed>;

pub(super) fn read_statistics(path: &Path) -> Result<Statistics, String> {
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
