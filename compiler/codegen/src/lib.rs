//! `dittoc model.mlir -O3 -o model`: from the model module to one executable.
//!
//! 1. dittoc's passes: kernel selection (e-graph), kernel lowering, weight
//!    lowering against the payload layout (`ditto-passes`);
//! 2. upstream MLIR conversions to the LLVM dialect ([`pipeline`]);
//! 3. in-process translation to LLVM IR, `-O` optimization for the target
//!    CPU, object emission ([`llvm`]);
//! 4. link with the runtime static library (which bundles BLIS) and append
//!    the weights and tokenizer ([`payload`]).

use ditto_contracts::model::{attr, ModelConfig};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use ditto_ir::melior::ir::{
    attribute::{IntegerAttribute, StringAttribute},
    operation::OperationLike,
    Module,
};

pub mod llvm;
pub mod payload;
pub mod pipeline;

pub use llvm::Target;

/// A codegen failure with a message naming the file or op concerned.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Mlir(#[from] ditto_ir::MlirError),
}

impl CodegenError {
    pub fn new(message: impl Into<String>) -> Self {
        CodegenError::Message(message.into())
    }
}

impl From<ditto_passes::PassError> for CodegenError {
    fn from(e: ditto_passes::PassError) -> Self {
        CodegenError::Message(e.message)
    }
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The module in the LLVM dialect.
    Mlir,
    /// Optimized LLVM IR.
    Llvm,
    /// A native object file.
    Obj,
    /// A linked executable with the model payload.
    Exe,
}

#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub emit: Emit,
    pub target: Target,
    pub print_ir_after_all: bool,
    /// User rule files for the e-graph stage, on top of the built-in rules.
    pub rules: Vec<PathBuf>,
    /// How products with codebook-quantized matrices are computed.
    pub codebook_kernels: ditto_passes::select::CodebookKernel,
    /// The runtime static library; by default `libditto_rt.a` next to dittoc.
    pub runtime_lib: Option<PathBuf>,
}

/// A string attribute of the module (`ditto.weights`, ...).
pub fn string_attribute(module: &Module, key: &str) -> Result<String, CodegenError> {
    module
        .as_operation()
        .attribute(key)
        .ok()
        .and_then(|a| StringAttribute::try_from(a).ok())
        .map(|s| s.value().to_string())
        .ok_or_else(|| CodegenError::new(format!("the module has no string attribute `{key}`")))
}

fn integer_attribute(module: &Module, key: &str) -> Result<i64, CodegenError> {
    module
        .as_operation()
        .attribute(key)
        .ok()
        .and_then(|a| IntegerAttribute::try_from(a).ok())
        .map(|i| i.value())
        .ok_or_else(|| CodegenError::new(format!("the module has no integer attribute `{key}`")))
}

/// The model description the runtime reads from the manifest, from the
/// module's attributes (the model contract, `ditto_contracts::model`).
fn model_info(module: &Module) -> Result<ModelConfig, CodegenError> {
    ModelConfig::from_attributes(
        string_attribute(module, attr::ARCH)?,
        |key| integer_attribute(module, key),
        |key, value| CodegenError::new(format!("the module's `{key}` is {value}, below 0")),
    )
}

/// Compiles `options.input` to `options.output`.
pub fn compile(options: &CompileOptions) -> Result<(), CodegenError> {
    let context = ditto_ir::create_context()?;
    let mut module = ditto_ir::parse_file(&context, &options.input)?;
    let dir = options
        .input
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let sidecar = |key: &str| -> Result<PathBuf, CodegenError> {
        Ok(dir.join(string_attribute(&module, key)?))
    };
    let weights_path = sidecar(attr::WEIGHTS)?;
    let tokenizer_path = sidecar(attr::TOKENIZER)?;
    let tokenizer_config_path = sidecar(attr::TOKENIZER_CONFIG)?;
    let model = model_info(&module)?;
    let print = options.print_ir_after_all;

    let rules = ditto_passes::select::rule_set(&options.rules)?;
    let report =
        ditto_passes::select::select_kernels(&context, &module, &rules, options.codebook_kernels)?;
    eprintln!("{report}");
    if print {
        pipeline::print_after("ditto-select-kernels", &module);
    }
    ditto_passes::kernels::lower_kernels(&context, &module)?;
    if print {
        pipeline::print_after("ditto-lower-kernels", &module);
    }
    let used = ditto_passes::weights::weights_used(&module)?;
    let layout = payload::WeightLayout::new(&weights_path, &used)?;
    ditto_passes::weights::lower_weights(&context, &module, &layout.offsets())?;
    if print {
        pipeline::print_after("ditto-lower-weights", &module);
    }
    ditto_ir::verify(&context, &module, &options.input.display().to_string())?;
    pipeline::run_pipeline(&context, &mut module, pipeline::LOWER_TO_LLVM, print)?;

    let write = |path: &Path, text: String| {
        std::fs::write(path, text)
            .map_err(|e| CodegenError::new(format!("{}: cannot write: {e}", path.display())))
    };
    match options.emit {
        Emit::Mlir => return write(&options.output, format!("{}\n", module.as_operation())),
        Emit::Llvm | Emit::Obj => {
            let llvm = llvm::translate(&module)?;
            return llvm::optimize_and_write(
                &llvm,
                &options.target,
                &options.output,
                options.emit == Emit::Obj,
            );
        }
        Emit::Exe => {}
    }
    let llvm = llvm::translate(&module)?;
    let object = options.output.with_extension("o");
    llvm::optimize_and_write(&llvm, &options.target, &object, true)?;
    let runtime = match &options.runtime_lib {
        Some(path) => path.clone(),
        None => default_runtime_lib()?,
    };
    let linked = link(&object, &runtime, &options.output);
    let _ = std::fs::remove_file(&object);
    linked?;
    payload::append(
        &options.output,
        &layout,
        &tokenizer_path,
        &tokenizer_config_path,
        model,
    )
}

/// `libditto_rt.a` next to the running dittoc (where cargo builds both), or
/// `$DITTO_RUNTIME_LIB`.
pub fn default_runtime_lib() -> Result<PathBuf, CodegenError> {
    if let Some(path) = std::env::var_os("DITTO_RUNTIME_LIB") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| CodegenError::new(format!("cannot locate dittoc itself: {e}")))?;
    let candidate = exe
        .parent()
        .map(|d| d.join("libditto_rt.a"))
        .filter(|p| p.exists());
    let candidate = candidate.or_else(|| {
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join("libditto_rt.a"))
            .filter(|p| p.exists())
    });
    candidate.ok_or_else(|| {
        CodegenError::new(
            "cannot find the runtime library libditto_rt.a next to dittoc; \
             build it with `cargo build --release -p ditto-rt` or set DITTO_RUNTIME_LIB",
        )
    })
}

/// Links the model object with the runtime into an executable: unreachable
/// sections dropped and no debug information (the runtime archive carries
/// line tables that would otherwise double the executable's code size).
fn link(object: &Path, runtime: &Path, output: &Path) -> Result<(), CodegenError> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .arg("-o")
        .arg(output)
        .arg(object)
        .arg(runtime)
        .args([
            "-Wl,--gc-sections",
            "-Wl,--strip-debug",
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .status()
        .map_err(|e| CodegenError::new(format!("cannot run the linker `{cc}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CodegenError::new(format!(
            "linking {} failed ({status})",
            output.display()
        )))
    }
}
