//! MLIR set-up shared by every stage of dittoc: one context with the upstream
//! dialects, passes and LLVM translations registered and the project's IRDL
//! dialects loaded, parsing that reports MLIR's diagnostics as errors,
//! running a textual pass pipeline, and ([`pass`]) registering passes written
//! in Rust with MLIR's pass registry.

pub mod pass;
pub use pass::PassError;

use std::{cell::RefCell, path::Path, rc::Rc};

use melior::{
    dialect::DialectRegistry,
    ir::{Location, Module},
    utility::{register_all_dialects, register_all_llvm_translations, register_all_passes},
    Context, StringRef,
};

pub use melior;

/// An MLIR failure with every diagnostic MLIR emitted while it happened.
#[derive(Debug, thiserror::Error)]
#[error("{what}{}", diagnostics.iter().map(|d| format!("\n{d}")).collect::<String>())]
pub struct MlirError {
    pub what: String,
    pub diagnostics: Vec<String>,
}

impl MlirError {
    /// A failure without diagnostics.
    pub fn new(what: impl Into<String>) -> Self {
        MlirError {
            what: what.into(),
            diagnostics: vec![],
        }
    }
}

/// Creates the context every stage uses: all upstream dialects, passes and LLVM
/// translations, and the project's dialects (`ditto`) loaded from IRDL.
pub fn create_context() -> Result<Context, MlirError> {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    register_all_passes();
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    register_all_llvm_translations(&context);
    ditto_dialects::load(&context).map_err(|diagnostics| MlirError {
        what: "the project's IRDL dialects failed to load".into(),
        diagnostics,
    })?;
    Ok(context)
}

/// Collects MLIR diagnostics emitted on `context` while `f` runs.
pub fn with_diagnostics<T>(context: &Context, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let collected = Rc::new(RefCell::new(Vec::new()));
    let sink = collected.clone();
    let id = context.attach_diagnostic_handler(move |diagnostic| {
        let mut text = format!("{}: {}", diagnostic.location(), diagnostic);
        for index in 0..diagnostic.note_count() {
            if let Ok(note) = diagnostic.note(index) {
                text.push_str(&format!("\n  note: {}: {}", note.location(), note));
            }
        }
        sink.borrow_mut().push(text);
        true
    });
    let result = f();
    context.detach_diagnostic_handler(id);
    let diagnostics = collected.borrow().clone();
    (result, diagnostics)
}

/// Parses MLIR text; `source_name` names the text in locations and errors.
/// Top-level ops outside an explicit `module` get an implicit one, as in
/// `mlir-opt`.
pub fn parse_module<'c>(
    context: &'c Context,
    text: &str,
    source_name: &str,
) -> Result<Module<'c>, MlirError> {
    let parse = |text: &str| {
        with_diagnostics(context, || unsafe {
            let op = mlir_sys::mlirOperationCreateParse(
                context.to_raw(),
                StringRef::new(text).to_raw(),
                StringRef::new(source_name).to_raw(),
            );
            melior::ir::Operation::from_option_raw(op)
        })
    };
    let (parsed, diagnostics) = parse(text);
    let module = match parsed.map(Module::from_operation) {
        Some(Some(module)) => Some(module),
        // Not a single `builtin.module`: wrap it in one, on the same first
        // line so that line numbers stay those of the file.
        _ => {
            let (wrapped, wrapped_diagnostics) = parse(&format!("module {{{text}\n}}"));
            match wrapped.and_then(Module::from_operation) {
                Some(module) => Some(module),
                None => {
                    return Err(MlirError {
                        what: format!("{source_name}: not a valid MLIR module"),
                        diagnostics: if wrapped_diagnostics.is_empty() {
                            diagnostics
                        } else {
                            wrapped_diagnostics
                        },
                    })
                }
            }
        }
    };
    let module = module.expect("parsed or returned");
    verify(context, &module, source_name)?;
    Ok(module)
}

/// Reads and parses an MLIR file, naming the file in every error.
pub fn parse_file<'c>(context: &'c Context, path: &Path) -> Result<Module<'c>, MlirError> {
    let text = std::fs::read_to_string(path).map_err(|e| MlirError {
        what: format!("{}: cannot read: {e}", path.display()),
        diagnostics: vec![],
    })?;
    parse_module(context, &text, &path.display().to_string())
}

/// Verifies a module, returning MLIR's diagnostics on failure.
pub fn verify(context: &Context, module: &Module, source_name: &str) -> Result<(), MlirError> {
    use melior::ir::operation::OperationLike;
    let (ok, diagnostics) = with_diagnostics(context, || module.as_operation().verify());
    if ok {
        Ok(())
    } else {
        Err(MlirError {
            what: format!("{source_name}: the module does not verify"),
            diagnostics,
        })
    }
}

/// A string attribute of the module (`ditto.weights`, ...).
pub fn string_attribute(module: &Module, key: &str) -> Result<String, MlirError> {
    use melior::ir::{attribute::StringAttribute, operation::OperationLike};
    module
        .as_operation()
        .attribute(key)
        .ok()
        .and_then(|a| StringAttribute::try_from(a).ok())
        .map(|s| s.value().to_string())
        .ok_or_else(|| MlirError::new(format!("the module has no string attribute `{key}`")))
}

/// An integer attribute of the module (`ditto.n_layers`, ...).
pub fn integer_attribute(module: &Module, key: &str) -> Result<i64, MlirError> {
    use melior::ir::{attribute::IntegerAttribute, operation::OperationLike};
    module
        .as_operation()
        .attribute(key)
        .ok()
        .and_then(|a| IntegerAttribute::try_from(a).ok())
        .map(|i| i.value())
        .ok_or_else(|| MlirError::new(format!("the module has no integer attribute `{key}`")))
}

/// Runs a textual pass pipeline (`builtin.module(…)`, parsed by MLIR, with
/// every registered pass) on `module`, printing the IR after every pass to
/// stderr when `print_after_all` is set. A failure carries the diagnostics
/// the passes emitted.
pub fn run_pipeline(
    context: &Context,
    module: &mut Module,
    pipeline: &str,
    print_after_all: bool,
) -> Result<(), MlirError> {
    use melior::{
        ir::operation::OperationPrintingFlags,
        pass::{PassIrPrintingOptions, PassManager},
        utility::parse_pass_pipeline,
    };
    let manager = PassManager::new(context);
    parse_pass_pipeline(manager.as_operation_pass_manager(), pipeline)
        .map_err(|e| MlirError::new(format!("invalid pass pipeline `{pipeline}`: {e}")))?;
    if print_after_all {
        // MLIR prints only from a single-threaded context.
        context.enable_multi_threading(false);
        manager.enable_ir_printing(&PassIrPrintingOptions {
            before_all: false,
            after_all: true,
            module_scope: true,
            on_change: false,
            on_failure: false,
            flags: OperationPrintingFlags::new(),
            tree_printing_path: Default::default(),
        });
    }
    let (result, diagnostics) = with_diagnostics(context, || manager.run(module));
    result.map_err(|_| MlirError {
        what: "the pass pipeline failed".into(),
        diagnostics,
    })
}

/// An unknown location naming a file, for ops created by passes.
pub fn file_location<'c>(context: &'c Context, name: &str) -> Location<'c> {
    Location::new(context, name, 0, 0)
}

/// The attribute holding `map` (`affine_map<…>`, as in a `linalg.generic`'s
/// `indexing_maps`).
pub fn affine_map_attribute(map: melior::ir::AffineMap<'_>) -> melior::ir::Attribute<'_> {
    // SAFETY: the map is live; the attribute lives in the map's context.
    unsafe { melior::ir::Attribute::from_raw(mlir_sys::mlirAffineMapAttrGet(map.to_raw())) }
}

/// The marker MLIR stores for a dynamic extent (`?`) in a shape or in the
/// static lists beside an op's dynamic operands.
pub fn dynamic_size() -> i64 {
    // SAFETY: a constant of the C API.
    unsafe { mlir_sys::mlirShapedTypeGetDynamicSize() }
}

/// The marker MLIR stores for a dynamic offset or stride (`?`) in a
/// `strided<…>` layout.
pub fn dynamic_stride_or_offset() -> i64 {
    // SAFETY: a constant of the C API.
    unsafe { mlir_sys::mlirShapedTypeGetDynamicStrideOrOffset() }
}
