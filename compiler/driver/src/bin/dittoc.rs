//! dittoc — compiles a code LLM into one native executable.
//!
//!     dittoc import <hf-checkpoint-dir | model.gguf> -o model.mlir
//!     dittoc model.mlir -O3 -o model [--emit=mlir|llvm|obj|exe] [--datastore code.ds]
//!     dittoc datastore build SOURCES... -o code.ds --tokenizer model.mlir

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use ditto_codegen::{CompileOptions, Emit, Target};
use ditto_driver::{flags, quantize::DEFAULT_CALIBRATION_TOKENS};

#[derive(Parser)]
#[command(
    name = "dittoc",
    version,
    about = "Compile a code LLM (model.mlir) into one native executable",
    after_help = "To bring a model in first: dittoc import <hf-checkpoint-dir | model.gguf> -o model.mlir\n\
                  To quantize it: dittoc quantize model.mlir --bits 4 --block 256 -o q4.mlir\n\
                  To build a datastore of code to draft from: dittoc datastore build SOURCES... -o code.ds --tokenizer model.mlir"
)]
struct CompileArgs {
    /// The model module written by `dittoc import` (or edited by hand).
    input: PathBuf,
    /// Output path (default: the input without its extension).
    #[arg(short = 'o')]
    output: Option<PathBuf>,
    /// Optimization level, as -O0 .. -O3.
    #[arg(short = 'O', default_value_t = 2, allow_negative_numbers = true,
          value_parser = flags::opt_level)]
    opt_level: u8,
    /// What to write.
    #[arg(long, value_enum, default_value_t = EmitKind::Exe)]
    emit: EmitKind,
    /// CPU to generate code for, as LLVM names it (default: the host CPU
    /// and its features).
    #[arg(long, value_parser = flags::target_cpu)]
    target_cpu: Option<String>,
    /// Print the IR after every pass to stderr.
    #[arg(long = "mlir-print-ir-after-all")]
    print_ir_after_all: bool,
    /// How products with codebook-quantized weights run: fused kernels, or
    /// Ditto's recipe (dequantize to f32, then BLIS).
    #[arg(long = "codebook-kernels", value_enum, default_value_t = ditto_driver::CodebookKernels::Fused)]
    codebook_kernels: ditto_driver::CodebookKernels,
    /// Extra e-graph rule files, added to the built-in rules.
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// A datastore file (`dittoc datastore build`, with this module's
    /// tokenizer) to bake into the executable: it drafts from it for
    /// speculative decoding, which is then on by default.
    #[arg(long, value_name = "FILE")]
    datastore: Option<PathBuf>,
}

#[derive(Parser)]
#[command(
    name = "dittoc datastore",
    about = "Build a datastore of code for speculative decoding (docs/speculation.md)"
)]
struct DatastoreArgs {
    #[command(subcommand)]
    command: DatastoreCommand,
}

#[derive(clap::Subcommand)]
enum DatastoreCommand {
    /// Tokenize the code of SOURCES with a model's tokenizer and index it
    /// (a suffix array) into a datastore file, for `dittoc MODEL
    /// --datastore FILE` or the executable's `--datastore FILE`.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Files (read whatever their extension) and directories (their code
    /// files, by extension; .gitignore honoured, hidden files and symbolic
    /// links skipped).
    #[arg(required = true, value_name = "SOURCES")]
    sources: Vec<PathBuf>,
    /// The datastore file to write.
    #[arg(short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// The model whose tokenizer tokenizes the code: a module from `dittoc
    /// import` or `dittoc quantize` (its tokenizer file, `ditto.tokenizer`),
    /// or a tokenizer.json. The datastore works with every model compiled
    /// from a module with this tokenizer.
    #[arg(long, value_name = "MODEL")]
    tokenizer: PathBuf,
    /// Skip files larger than this many KiB (generated or vendored, most likely).
    #[arg(long, value_name = "KIB", default_value_t = 1024, allow_negative_numbers = true,
          value_parser = flags::max_file_kib)]
    max_file_kib: u64,
    /// Stop reading when the files read reach this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256, allow_negative_numbers = true,
          value_parser = flags::max_total_mib)]
    max_total_mib: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum EmitKind {
    Mlir,
    Llvm,
    Obj,
    Exe,
}

#[derive(Parser)]
#[command(
    name = "dittoc import",
    about = "Import a Hugging Face checkpoint directory or a GGUF file as model.mlir plus sidecars"
)]
struct ImportArgs {
    /// A Hugging Face checkpoint directory or a .gguf file.
    source: PathBuf,
    /// The module to write; sidecars go beside it.
    #[arg(short = 'o', default_value = "model.mlir")]
    output: PathBuf,
    /// Keep a GGUF's output.weight as a tensor of its own even when it is
    /// token_embd.weight quantized a second time (by default such a pair is
    /// imported once, as tied embeddings, from the more precise copy).
    #[arg(long)]
    separate_lm_head: bool,
}

#[derive(Parser)]
#[command(
    name = "dittoc quantize",
    about = "Quantize a model module's linear weights with per-block k-means codebooks"
)]
struct QuantizeArgs {
    /// The model module (from `dittoc import`).
    input: PathBuf,
    /// The quantized module to write; its weight and tokenizer files go beside it.
    #[arg(short = 'o')]
    output: PathBuf,
    /// Bits per weight index for every tensor: 2, 3, 4, 5, 6 or 8 (ignored
    /// with --max-error or --bits-avg, which choose per tensor).
    #[arg(long, default_value_t = 4, allow_negative_numbers = true, value_parser = flags::bits)]
    bits: u8,
    /// Weights per codebook (a multiple of 8). Default: 32·2^bits (codebooks
    /// cost ½ bit per weight: 512 at 4 bits); with --max-error or --bits-avg,
    /// two lengths per width, 32·2^b and 64·2^b, are candidates
    #[arg(long, allow_negative_numbers = true, value_parser = flags::block)]
    block: Option<usize>,
    /// Bound every tensor's relative output error ‖Wx−Ŵx‖/‖Wx‖ on the
    /// calibration activations; the smallest width that meets it is chosen.
    #[arg(long, value_name = "EPSILON", conflicts_with = "bits_avg",
          allow_negative_numbers = true, value_parser = flags::positive)]
    max_error: Option<f64>,
    /// Bound the average bits per weight (codebooks included); widths are
    /// chosen per tensor to minimize the total error.
    #[arg(long, value_name = "BITS", allow_negative_numbers = true,
          value_parser = flags::positive)]
    bits_avg: Option<f64>,
    /// Fix one tensor's quantization: PATTERN=BITS or PATTERN=BITS:BLOCK,
    /// where PATTERN is a tensor name with `*` for any characters
    /// (`output.weight=6`, `blk.*.attn_v.weight=8:8192`). Repeatable; the
    /// first match wins. BLOCK defaults to --block, else 32·2^BITS. With
    /// --bits-avg the fixed tensors count against the budget and the others
    /// share what is left.
    #[arg(long = "tensor-bits", value_name = "PATTERN=BITS[:BLOCK]", value_parser = flags::tensor_bits)]
    tensor_bits: Vec<(String, u8, Option<usize>)>,
    /// Calibration texts: files, or directories of code (every other code
    /// file is used; the rest stays for evaluation). Default: the Python
    /// standard library's sources on this machine.
    #[arg(long = "calib", value_name = "PATH")]
    calib: Vec<PathBuf>,
    /// The calibration set: code (--calib or the default), text (the
    /// licenses in /usr/share/common-licenses), random (random token ids),
    /// or none (k-means unweighted, weight error instead of output error).
    #[arg(long, value_enum, default_value_t = CalibSet::Code)]
    calib_set: CalibSet,
    /// About how many tokens of the calibration set the model runs over
    /// (exactly this many random ids with --calib-set random). More tokens
    /// give the error-compensating rounding a better estimate of XᵀX; the
    /// calibration run's time grows in proportion. At most 16,777,216.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CALIBRATION_TOKENS,
          allow_negative_numbers = true, value_parser = flags::calib_tokens,
          conflicts_with = "calib_stats")]
    calib_tokens: usize,
    /// Keep the calibration statistics (input samples and XᵀX per weight:
    /// about 3 GB for Qwen2.5-Coder-0.5B) in FILE for --calib-stats;
    /// otherwise they are deleted once read.
    #[arg(long, value_name = "FILE", conflicts_with = "calib_stats")]
    save_calib_stats: Option<PathBuf>,
    /// Statistics from an earlier run (--save-calib-stats, or an
    /// executable's --calibrate output) instead of running the model.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["calib", "calib_set"])]
    calib_stats: Option<PathBuf>,
    /// How weights are rounded onto their codebooks: compensated (GPTQ-style:
    /// each rounding error is moved onto the weights not rounded yet through
    /// the calibration inputs' XᵀX; needs calibration) or nearest (each
    /// weight to its nearest centroid). Default: compensated, or nearest
    /// with --calib-set none.
    #[arg(long, value_enum)]
    rounding: Option<Rounding>,
    /// How each block's codebook is found: exact (the optimum of the
    /// importance-weighted k-means objective, by dynamic programming over
    /// the sorted weights), lloyd (k-means++ seeding from --seed, then
    /// Lloyd iterations: a local optimum, much faster), or auto (exact up
    /// to 6 bits, lloyd at 8, where the exact solve takes about 150 times
    /// as long and gains nothing).
    #[arg(long, value_enum, default_value_t = Kmeans::Auto)]
    kmeans: Kmeans,
    /// Seed of the k-means++ initialisation (--kmeans lloyd) and of the
    /// random calibration set.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = flags::seed)]
    seed: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kmeans {
    Auto,
    Exact,
    Lloyd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rounding {
    Compensated,
    Nearest,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CalibSet {
    Code,
    Text,
    Random,
    None,
}

/// Why a command failed: its command line (exit code 2, as clap's own
/// errors) or the run (exit code 1).
enum Failure {
    Usage(String),
    Run(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Run(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::Run(message.into())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("quantize") {
        let quantize = QuantizeArgs::parse_from(
            std::iter::once("dittoc quantize".to_string()).chain(args[2..].iter().cloned()),
        );
        run_quantize(quantize)
    } else if args.get(1).map(String::as_str) == Some("datastore") {
        let datastore = DatastoreArgs::parse_from(
            std::iter::once("dittoc datastore".to_string()).chain(args[2..].iter().cloned()),
        );
        run_datastore(datastore)
    } else if args.get(1).map(String::as_str) == Some("import") {
        let import = ImportArgs::parse_from(
            std::iter::once("dittoc import".to_string()).chain(args[2..].iter().cloned()),
        );
        run_import(import)
    } else {
        run_compile(CompileArgs::parse_from(args))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("dittoc: error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("dittoc: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_quantize(args: QuantizeArgs) -> Result<(), Failure> {
    // An output that is an input is refused by quantize_module, which
    // knows every file the run reads and writes.
    if args.output.extension().and_then(|e| e.to_str()) != Some("mlir") {
        return Err(Failure::Usage(format!(
            "-o {}: the output module must end in .mlir",
            args.output.display()
        )));
    }
    // Files the flags name, before the model is compiled for calibration.
    flags::output_directory("-o", &args.output)?;
    if let Some(stats) = &args.save_calib_stats {
        flags::output_directory("--save-calib-stats", stats)?;
    }
    if let Some(stats) = &args.calib_stats {
        flags::readable_file("--calib-stats", stats)?;
    }
    for path in &args.calib {
        flags::existing("--calib", path, "the calibration set")?;
    }
    use ditto_driver::quantize::{default_code_set, Calibration, QuantizeOptions};
    let tokens = args.calib_tokens;
    // Compensated rounding moves errors through the calibration inputs:
    // asked for without any, it would silently round to the nearest.
    let compensate = match args.rounding {
        Some(Rounding::Compensated)
            if args.calib_stats.is_none() && args.calib_set == CalibSet::None =>
        {
            return Err(Failure::Usage(
                "--rounding compensated needs calibration inputs, and --calib-set none \
                        gives none (calibrate, or use --rounding nearest)"
                    .into(),
            ));
        }
        Some(rounding) => rounding == Rounding::Compensated,
        None => args.calib_stats.is_some() || args.calib_set != CalibSet::None,
    };
    let calibration = match (args.calib_stats, args.calib_set) {
        (Some(stats), _) => Calibration::Stats(stats),
        (None, CalibSet::None) => Calibration::None,
        (None, CalibSet::Random) => Calibration::Random { tokens },
        (None, CalibSet::Text) => Calibration::Prose {
            paths: vec![PathBuf::from("/usr/share/common-licenses")],
            tokens,
        },
        (None, CalibSet::Code) if !args.calib.is_empty() => Calibration::Texts {
            paths: args.calib,
            tokens,
        },
        (None, CalibSet::Code) => Calibration::Texts {
            paths: vec![default_code_set().ok_or(
                "no calibration set: the Python standard library was not found under /usr/lib; \
                 give --calib PATH (your repository), or --calib-set none",
            )?],
            tokens,
        },
    };
    let options = QuantizeOptions {
        input: args.input,
        output: args.output,
        bits: args.bits,
        block: args.block,
        max_error: args.max_error,
        bits_avg: args.bits_avg,
        overrides: args
            .tensor_bits
            .into_iter()
            .map(|(pattern, bits, block)| ditto_quantize::Override {
                pattern,
                candidate: ditto_quantize::Candidate {
                    bits,
                    block: block.or(args.block).unwrap_or(32 << bits),
                },
            })
            .collect(),
        calibration,
        save_stats: args.save_calib_stats,
        compensate,
        kmeans: match args.kmeans {
            Kmeans::Auto => ditto_quantize::Method::Auto,
            Kmeans::Exact => ditto_quantize::Method::Exact,
            Kmeans::Lloyd => ditto_quantize::Method::Lloyd,
        },
        seed: args.seed,
    };
    // Flags that do not fit together (or with the widths) are the command
    // line's fault.
    ditto_driver::quantize::check_options(&options).map_err(Failure::Usage)?;
    let summary = ditto_driver::quantize::quantize_module(&options)?;
    eprintln!("{summary}");
    Ok(())
}

fn run_datastore(args: DatastoreArgs) -> Result<(), Failure> {
    let DatastoreCommand::Build(args) = args.command;
    flags::output_directory("-o", &args.output)?;
    flags::existing("--tokenizer", &args.tokenizer, "the tokenizer")?;
    for source in &args.sources {
        std::fs::metadata(source)
            .map_err(|e| format!("{}: cannot read the source: {e}", source.display()))?;
    }
    let options = ditto_driver::datastore::BuildOptions {
        sources: args.sources,
        output: args.output,
        tokenizer: args.tokenizer,
        limits: ditto_datastore::repo::Limits {
            max_file_bytes: args.max_file_kib << 10,
            max_total_bytes: args.max_total_mib << 20,
        },
    };
    let built = ditto_driver::datastore::build(&options)?;
    eprintln!("{}", built.line(&options.output));
    Ok(())
}

fn run_import(args: ImportArgs) -> Result<(), Failure> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("mlir") {
        return Err(Failure::Usage(format!(
            "-o {}: the output module must end in .mlir",
            args.output.display()
        )));
    }
    flags::output_directory("-o", &args.output)?;
    let options = ditto_import::ImportOptions {
        tie_duplicate_head: !args.separate_lm_head,
    };
    let imported = ditto_import::import_with(&args.source, &args.output, &options)
        .map_err(|e| e.to_string())?;
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    let c = &imported.config;
    eprintln!(
        "imported {} ({} layers, d={}, {} heads / {} KV heads, vocab {}) → {} + {}",
        c.arch.name(),
        c.n_layers,
        c.d_model,
        c.n_heads,
        c.n_kv_heads,
        c.vocab,
        imported.module.display(),
        imported.weights.display()
    );
    Ok(())
}

fn run_compile(args: CompileArgs) -> Result<(), Failure> {
    let emit = match args.emit {
        EmitKind::Mlir => Emit::Mlir,
        EmitKind::Llvm => Emit::Llvm,
        EmitKind::Obj => Emit::Obj,
        EmitKind::Exe => Emit::Exe,
    };
    let output = args.output.unwrap_or_else(|| {
        let stem = args.input.with_extension("");
        match emit {
            Emit::Mlir => stem.with_extension("llvm.mlir"),
            Emit::Llvm => stem.with_extension("ll"),
            Emit::Obj => stem.with_extension("o"),
            Emit::Exe => stem,
        }
    });
    // Files the flags name, before the pipeline runs.
    flags::output_directory("-o", &output)?;
    for rules in &args.rules {
        flags::readable_file("--rules", rules)?;
    }
    if let Some(datastore) = &args.datastore {
        if emit != Emit::Exe {
            return Err(Failure::Usage(
                "--datastore is baked into an executable: it needs --emit=exe".into(),
            ));
        }
        flags::readable_file("--datastore", datastore)?;
    }
    // An output that is the module or one of its files is refused by
    // ditto_codegen::compile, which reads the module's sidecar attributes.
    ditto_codegen::compile(&CompileOptions {
        input: args.input,
        output,
        emit,
        target: Target {
            opt_level: args.opt_level,
            cpu: args.target_cpu,
        },
        print_ir_after_all: args.print_ir_after_all,
        rules: args.rules,
        codebook_kernels: args.codebook_kernels.into(),
        runtime_lib: None,
        datastore: args.datastore,
    })
    .map_err(|e| Failure::Run(e.to_string()))
}
