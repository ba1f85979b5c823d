//! The MLIR half of codegen: dittoc's passes, then upstream conversions down
//! to the LLVM dialect.

use ditto_ir::{
    melior::{
        ir::{operation::OperationPrintingFlags, Module},
        pass::{PassIrPrintingOptions, PassManager},
        utility::parse_pass_pipeline,
        Context,
    },
    with_diagnostics, MlirError,
};

/// Upstream conversions from linalg on memrefs to the LLVM dialect.
pub const LOWER_TO_LLVM: &str = "builtin.module(canonicalize,convert-linalg-to-loops,lower-affine,\
convert-scf-to-cf,canonicalize,cse,expand-strided-metadata,lower-affine,finalize-memref-to-llvm,\
convert-math-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,\
convert-cf-to-llvm,reconcile-unrealized-casts,canonicalize,cse)";

/// Runs a textual pass pipeline on `module`, printing the IR after every pass
/// to stderr when `print_after_all` is set.
pub fn run_pipeline(
    context: &Context,
    module: &mut Module,
    pipeline: &str,
    print_after_all: bool,
) -> Result<(), MlirError> {
    let manager = PassManager::new(context);
    parse_pass_pipeline(manager.as_operation_pass_manager(), pipeline).map_err(|e| MlirError {
        what: format!("invalid pass pipeline `{pipeline}`: {e}"),
        diagnostics: vec![],
    })?;
    if print_after_all {
        // MLIR prints only from a single-threaded context.
        context.enable_multi_threading(false);
        manager.enable_ir_printing(&PassIrPrintingOptions {
            before_all: false,
            after_all: true,
            module_scope: true,
            on_change: false,
            on_failure: true,
            flags: OperationPrintingFlags::new(),
            tree_printing_path: Default::default(),
        });
    }
    let (result, diagnostics) = with_diagnostics(context, || manager.run(module));
    result.map_err(|_| MlirError {
        what: format!("pass pipeline `{pipeline}` failed"),
        diagnostics,
    })
}

/// Prints `module` the way `--mlir-print-ir-after-all` does, for dittoc's
/// own passes (which run outside a PassManager).
pub fn print_after(name: &str, module: &Module) {
    eprintln!("// -----// IR Dump After {name} //----- //");
    eprintln!(
        "{}",
        ditto_ir::melior::ir::operation::OperationLike::to_string_with_flags(
            &module.as_operation(),
            OperationPrintingFlags::new()
        )
        .unwrap_or_default()
    );
}
