//! ditto-opt — `mlir-opt` with dittoc's passes registered beside the upstream
//! ones and the project's dialects loaded:
//!
//!     ditto-opt input.mlir --pass-pipeline='builtin.module(ditto-select-kernels{codebook-kernels=dequantize},canonicalize)'
//!     ditto-opt input.mlir --split-input-file --verify-diagnostics
//!
//! Everything else is MLIR's own: the pipeline parser, pass options
//! (`ditto-quantize{bits=4 block=64}`), `--mlir-print-ir-after-all`,
//! `--verify-diagnostics`, `--help` (which lists dittoc's passes and their
//! options). One check comes first: an `-o` that names a file given as
//! another argument (the input) is refused. MLIR would replace the input
//! with its output, and it opens (truncates) the output before it parses an
//! input that LLVM has memory-mapped rather than read.

use std::{
    ffi::OsString,
    os::unix::ffi::{OsStrExt, OsStringExt},
    path::{Path, PathBuf},
    process::ExitCode,
};

fn main() -> ExitCode {
    if let Err(message) = refuse_output_over_input(std::env::args_os().skip(1).collect()) {
        eprintln!("ditto-opt: error: {message}");
        return ExitCode::FAILURE;
    }
    ditto_passes::registry::register();
    ditto_ir::pass::opt_main("ditto-opt: dittoc's and MLIR's passes on an MLIR file")
}

/// Refuses `-o FILE` (also `-o=FILE`, `--o FILE`, `--o=FILE`) when FILE is
/// the same file as any other argument, or an option's `=` value, that
/// names an existing file (the input, a file an option reads).
fn refuse_output_over_input(args: Vec<OsString>) -> Result<(), String> {
    let mut output: Option<PathBuf> = None;
    let mut others: Vec<PathBuf> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"-o" || bytes == b"--o" {
            output = args.next().map(PathBuf::from);
        } else if let Some(value) = bytes
            .strip_prefix(b"-o=")
            .or_else(|| bytes.strip_prefix(b"--o="))
        {
            output = Some(PathBuf::from(OsString::from_vec(value.to_vec())));
        } else if bytes.starts_with(b"-") {
            if let Some(at) = bytes.iter().position(|&b| b == b'=') {
                others.push(PathBuf::from(OsString::from_vec(bytes[at + 1..].to_vec())));
            }
        } else {
            others.push(PathBuf::from(arg));
        }
    }
    let Some(output) = output.filter(|o| o.as_os_str() != "-") else {
        return Ok(());
    };
    let inputs: Vec<(&Path, &str)> = others
        .iter()
        .filter(|p| p.is_file())
        .map(|p| (p.as_path(), "the input file"))
        .collect();
    ditto_files::refuse_overwrite("-o", &output, &[(&output, "")], &inputs)
        .map_err(|e| e.to_string())
}
