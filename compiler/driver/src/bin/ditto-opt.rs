//! ditto-opt — runs passes on an MLIR file, in the conventions of mlir-opt.
//!
//!     ditto-opt input.mlir --pass-pipeline='builtin.module(ditto-select-kernels,canonicalize)'
//!     ditto-opt input.mlir --split-input-file --verify-diagnostics
//!
//! dittoc's own passes (`ditto-select-kernels`, `ditto-lower-kernels`,
//! `ditto-lower-weights`, `ditto-verify`, `ditto-quantize{bits=N block=N}`)
//! mix freely with upstream ones; the
//! upstream runs between them go to MLIR's pass manager as one pipeline.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use ditto_codegen::pipeline;
use ditto_ir::melior::{ir::Module, Context};

#[derive(Parser)]
#[command(
    name = "ditto-opt",
    version,
    about = "Run dittoc's and MLIR's passes on an MLIR file"
)]
struct Args {
    /// Input file (`-` for stdin).
    input: PathBuf,
    /// Output file (default: stdout).
    #[arg(short = 'o')]
    output: Option<PathBuf>,
    /// `builtin.module(pass, pass, ...)`.
    #[arg(long = "pass-pipeline")]
    pass_pipeline: Option<String>,
    /// Process each `// -----` separated chunk on its own.
    #[arg(long = "split-input-file")]
    split_input_file: bool,
    /// Check diagnostics against `// expected-error {{...}}` comments.
    #[arg(long = "verify-diagnostics")]
    verify_diagnostics: bool,
    /// Print the IR after every pass to stderr.
    #[arg(long = "mlir-print-ir-after-all")]
    print_ir_after_all: bool,
    /// How products with codebook-quantized weights run: fused kernels, or
    /// Ditto's recipe (dequantize to f32, then BLIS).
    #[arg(long = "codebook-kernels", value_enum, default_value_t = ditto_driver::CodebookKernels::Fused)]
    codebook_kernels: ditto_driver::CodebookKernels,
    /// Extra e-graph rule files for ditto-select-kernels.
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
}

const SPLIT: &str = "// -----";

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let source_name = args.input.display().to_string();
    let text = if source_name == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("<stdin>: {e}"))?;
        text
    } else {
        std::fs::read_to_string(&args.input).map_err(|e| format!("{source_name}: {e}"))?
    };
    let chunks: Vec<(usize, &str)> = if args.split_input_file {
        let mut chunks = Vec::new();
        let mut line = 0;
        for chunk in text.split(SPLIT) {
            chunks.push((line, chunk));
            line += chunk.matches('\n').count();
        }
        chunks
    } else {
        vec![(0, text.as_str())]
    };
    let rules = ditto_passes::select::rule_set(&args.rules).map_err(|e| e.message)?;
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for (first_line, chunk) in chunks {
        // Pad with newlines so that line numbers match the whole file.
        let padded = format!("{}{chunk}", "\n".repeat(first_line));
        let (output, diagnostics) = process(args, &padded, &source_name, &rules);
        if args.verify_diagnostics {
            failures.extend(verify_expected(&padded, &diagnostics, &source_name));
        } else if !diagnostics.is_empty() {
            return Err(diagnostics.join("\n"));
        }
        if let Some(output) = output {
            outputs.push(output);
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    let joined = outputs.join(&format!("{SPLIT}\n"));
    match &args.output {
        Some(path) => std::fs::write(path, joined).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            print!("{joined}");
            Ok(())
        }
    }
}

/// Parses and runs the pipeline on one chunk: the printed result, or the
/// diagnostics that stopped it.
fn process(
    args: &Args,
    text: &str,
    source_name: &str,
    rules: &ditto_passes::select::RuleSet,
) -> (Option<String>, Vec<String>) {
    let context = match ditto_ir::create_context() {
        Ok(context) => context,
        Err(e) => return (None, vec![e.to_string()]),
    };
    let mut module = match ditto_ir::parse_module(&context, text, source_name) {
        Ok(module) => module,
        Err(e) => return (None, with_what(e)),
    };
    let passes = match &args.pass_pipeline {
        Some(pipeline) => match split_pipeline(pipeline) {
            Ok(passes) => passes,
            Err(e) => return (None, vec![e]),
        },
        None => vec![],
    };
    let mut upstream: Vec<String> = Vec::new();
    for pass in passes.iter().map(String::as_str).chain([""]) {
        if !pass.starts_with("ditto-") && !pass.is_empty() {
            upstream.push(pass.to_string());
            continue;
        }
        if !upstream.is_empty() {
            let pipeline = format!("builtin.module({})", upstream.join(","));
            upstream.clear();
            if let Err(e) =
                pipeline::run_pipeline(&context, &mut module, &pipeline, args.print_ir_after_all)
            {
                return (None, with_what(e));
            }
        }
        if pass.is_empty() {
            break;
        }
        if let Err(message) = run_ditto_pass(&context, &module, pass, rules, args.codebook_kernels)
        {
            return (None, vec![message]);
        }
        if args.print_ir_after_all {
            pipeline::print_after(pass, &module);
        }
    }
    (Some(format!("{}\n", module.as_operation())), vec![])
}

fn with_what(e: ditto_ir::MlirError) -> Vec<String> {
    if e.diagnostics.is_empty() {
        vec![e.what]
    } else {
        e.diagnostics
    }
}

fn run_ditto_pass(
    context: &Context,
    module: &Module,
    pass: &str,
    rules: &ditto_passes::select::RuleSet,
    codebook: ditto_driver::CodebookKernels,
) -> Result<(), String> {
    let error = |e: ditto_passes::PassError| e.message;
    match pass {
        "ditto-select-kernels" => {
            ditto_passes::select::select_kernels(context, module, rules, codebook.into())
                .map(|_| ())
                .map_err(error)
        }
        "ditto-lower-kernels" => ditto_passes::kernels::lower_kernels(context, module).map_err(error),
        "ditto-lower-weights" => {
            // Without a weight file, the offsets are those of dittoc's
            // payload layout.
            let used = ditto_passes::weights::weights_used(module).map_err(error)?;
            let (placements, _) = ditto_passes::weights::layout(&used).map_err(error)?;
            let offsets = ditto_passes::weights::offsets(&placements);
            ditto_passes::weights::lower_weights(context, module, &offsets).map_err(error)
        }
        "ditto-verify" => ditto_passes::verify::verify(module).map_err(error),
        _ if pass.starts_with("ditto-quantize") => {
            // The IR rewrite alone (no weight data): every weight used only
            // as a product matrix, with the scheme of the pass options.
            let scheme = quantize_options(pass)?;
            let plan = ditto_passes::quantize::quantizable_weights(module)
                .map_err(error)?
                .into_iter()
                .map(|q| (q.name, scheme))
                .collect();
            ditto_passes::quantize::apply(context, module, &plan).map_err(error)
        }
        other => Err(format!(
            "unknown pass `{other}` (dittoc's passes: ditto-select-kernels, ditto-lower-kernels, ditto-lower-weights, ditto-verify, ditto-quantize)"
        )),
    }
}

/// `ditto-quantize{bits=4 block=256}` → the scheme (defaults 4, 256).
fn quantize_options(pass: &str) -> Result<ditto_dialects::codebook::Scheme, String> {
    let mut scheme = ditto_dialects::codebook::Scheme {
        bits: 4,
        block: 256,
    };
    let options = pass
        .strip_prefix("ditto-quantize")
        .unwrap_or_default()
        .trim();
    let options = options
        .strip_prefix('{')
        .and_then(|o| o.strip_suffix('}'))
        .unwrap_or(options);
    for option in options.split_whitespace() {
        let bad = || format!("ditto-quantize: bad option `{option}` (bits=N, block=N)");
        let (key, value) = option.split_once('=').ok_or_else(bad)?;
        match key {
            "bits" => scheme.bits = value.parse().map_err(|_| bad())?,
            "block" => scheme.block = value.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    Ok(scheme)
}

/// `builtin.module(a, b(c, d), e)` → ["a", "b(c, d)", "e"].
fn split_pipeline(pipeline: &str) -> Result<Vec<String>, String> {
    let inner = pipeline
        .trim()
        .strip_prefix("builtin.module(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("the pipeline must be `builtin.module(...)`, got `{pipeline}`"))?;
    let mut passes = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                passes.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    passes.push(inner[start..].trim().to_string());
    Ok(passes.into_iter().filter(|p| !p.is_empty()).collect())
}

/// One `// expected-error @+N {{message}}` annotation.
struct Expected {
    line: usize,
    message: String,
}

/// Compares diagnostics with the chunk's expected-error comments; returns
/// the mismatches, each naming file and line.
fn verify_expected(text: &str, diagnostics: &[String], source_name: &str) -> Vec<String> {
    let mut expected = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.split("expected-error").nth(1) else {
            continue;
        };
        let number = index + 1;
        let rest = rest.trim_start();
        let (target, rest) = if let Some(offset) = rest.strip_prefix('@') {
            let end = offset.find(char::is_whitespace).unwrap_or(offset.len());
            let delta: i64 = offset[..end].trim_start_matches('+').parse().unwrap_or(0);
            ((number as i64 + delta) as usize, &offset[end..])
        } else {
            (number, rest)
        };
        let message = rest
            .trim()
            .strip_prefix("{{")
            .and_then(|m| m.split("}}").next())
            .unwrap_or_default()
            .to_string();
        expected.push(Expected {
            line: target,
            message,
        });
    }
    let mut failures = Vec::new();
    let mut matched = vec![false; diagnostics.len()];
    for e in &expected {
        let hit = diagnostics.iter().enumerate().position(|(i, d)| {
            !matched[i] && diagnostic_line(d) == Some(e.line) && d.contains(&e.message)
        });
        match hit {
            Some(i) => matched[i] = true,
            None => failures.push(format!(
                "{source_name}:{}: error: expected error \"{}\" was not produced",
                e.line, e.message
            )),
        }
    }
    for (d, m) in diagnostics.iter().zip(&matched) {
        if !m {
            failures.push(format!("{source_name}: error: unexpected diagnostic: {d}"));
        }
    }
    failures
}

/// The line of a diagnostic printed as `loc("file":LINE:COL): ...`.
fn diagnostic_line(diagnostic: &str) -> Option<usize> {
    let after = diagnostic.split("\":").nth(1)?;
    after.split(':').next()?.parse().ok()
}
