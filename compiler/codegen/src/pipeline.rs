//! The MLIR half of codegen as one pass pipeline, parsed and run by MLIR
//! (`ditto_ir::run_pipeline`): dittoc's passes (registered by
//! `ditto_passes::registry`), then the upstream conversions to the LLVM
//! dialect.

use std::path::PathBuf;

use ditto_passes::select::CodebookKernel;

/// Upstream conversions from linalg on memrefs to the LLVM dialect.
pub const LOWER_TO_LLVM: &str = "canonicalize,convert-linalg-to-loops,lower-affine,\
convert-scf-to-cf,canonicalize,cse,expand-strided-metadata,lower-affine,finalize-memref-to-llvm,\
convert-math-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,\
convert-cf-to-llvm,reconcile-unrealized-casts,canonicalize,cse";

/// dittoc's whole pipeline: verify the module, select kernels (printing
/// what was selected), lower them and the weights, then convert to LLVM.
pub fn dittoc(codebook: CodebookKernel, rules: &[PathBuf]) -> String {
    let rules = rules
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let rules = if rules.is_empty() {
        String::new()
    } else {
        format!(" rules={}", quote(&rules))
    };
    format!(
        "builtin.module(ditto-verify,ditto-select-kernels{{codebook-kernels={} report=true{rules}}},\
         ditto-lower-kernels,ditto-lower-weights,{LOWER_TO_LLVM})",
        codebook.as_str()
    )
}

/// An option value as MLIR's option parser reads it back unchanged: quoted
/// when it holds a space or a brace.
fn quote(value: &str) -> String {
    if value.contains([' ', '{', '}', '"']) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}
