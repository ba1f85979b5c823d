//! `dittoc model.mlir -O3 -o model`: from the model module to one executable.
//!
//! 1. one MLIR pass pipeline ([`pipeline`]): dittoc's passes (verification,
//!    kernel selection with the e-graph, kernel lowering, weight lowering at
//!    the payload layout's offsets; `ditto-passes`), then the upstream
//!    conversions to the LLVM dialect;
//! 2. the weight offsets the pipeline compiled in, checked against the
//!    payload layout;
//! 3. in-process translation to LLVM IR, `-O` optimization for the target
//!    CPU, object emission ([`llvm`]);
//! 4. link with the runtime static library (which bundles BLIS) and append
//!    the weights, the tokenizer and a datastore if given ([`payload`]).

use ditto_contracts::model::{attr, ModelConfig};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use ditto_ir::melior::ir::Module;

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
    #[error(transparent)]
    Files(#[from] ditto_files::FileError),
}

impl CodegenError {
    pub fn new(message: impl Into<String>) -> Self {
        CodegenError::Message(message.into())
    }
}

impl From<ditto_passes::PassError> for CodegenError {
    fn from(e: ditto_passes::PassError) -> Self {
        CodegenError::Message(e.to_string())
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
    /// A datastore file (`dittoc datastore build`) to bake into the
    /// executable's payload; it must have been built with the module's
    /// tokenizer.
    pub datastore: Option<PathBuf>,
}

pub use ditto_ir::string_attribute;

fn integer_attribute(module: &Module, key: &str) -> Result<i64, CodegenError> {
    Ok(ditto_ir::integer_attribute(module, key)?)
}

/// The model description the runtime reads from the manifest, from the
/// module's attributes (the model contract, `ditto_contracts::model`).
fn model_info(module: &Module) -> Result<ModelConfig, CodegenError> {
    ModelConfig::from_attributes(
        ditto_ir::string_attribute(module, attr::ARCH)?,
        |key| integer_attribute(module, key),
        |key, value| CodegenError::new(format!("the module's `{key}` is {value}, below 0")),
    )
}

/// The files a module names in its attributes (`ditto.weights`,
/// `ditto.tokenizer`, `ditto.tokenizer_config`), beside it.
#[derive(Clone, Debug)]
pub struct Sidecars {
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    pub tokenizer_config: PathBuf,
}

impl Sidecars {
    /// The sidecars of `module`, read from `path`: each attribute must name
    /// a file in the module's directory (no absolute path, no `..`, no
    /// symbolic link out of it), or the error names the attribute and its
    /// value.
    pub fn of(module: &Module, path: &Path) -> Result<Sidecars, CodegenError> {
        let sidecar = |key: &str| -> Result<PathBuf, CodegenError> {
            let value = ditto_ir::string_attribute(module, key)?;
            let dir = path.parent().unwrap_or(Path::new(""));
            ditto_files::resolve_inside(dir, Path::new(&value), ditto_files::Symlinks::StayInside)
                .map_err(|why| {
                    CodegenError::new(format!(
                        "{}: the module's {key} = {value:?} {why}",
                        path.display()
                    ))
                })
        };
        Ok(Sidecars {
            weights: sidecar(attr::WEIGHTS)?,
            tokenizer: sidecar(attr::TOKENIZER)?,
            tokenizer_config: sidecar(attr::TOKENIZER_CONFIG)?,
        })
    }

    /// The three with what they are, as inputs for
    /// [`ditto_files::refuse_overwrite`].
    pub fn inputs(&self) -> [(&Path, &'static str); 3] {
        [
            (&self.weights, "the module's weight file (ditto.weights)"),
            (&self.tokenizer, "the module's tokenizer (ditto.tokenizer)"),
            (
                &self.tokenizer_config,
                "the module's tokenizer configuration (ditto.tokenizer_config)",
            ),
        ]
    }
}

/// Compiles `options.input` to `options.output` (through a temporary file
/// beside it, renamed into place once complete). An output that is the
/// module, one of its sidecars, a rule file or the runtime library is
/// refused before anything is written.
pub fn compile(options: &CompileOptions) -> Result<(), CodegenError> {
    ditto_passes::registry::register();
    let context = ditto_ir::create_context()?;
    let mut module = ditto_ir::parse_file(&context, &options.input)?;
    let sidecars = Sidecars::of(&module, &options.input)?;
    let model = model_info(&module)?;
    // The runtime library is needed (and looked for) only to link.
    let runtime = match (&options.runtime_lib, options.emit) {
        (_, Emit::Mlir | Emit::Llvm | Emit::Obj) => None,
        (Some(path), Emit::Exe) => Some(path.clone()),
        (None, Emit::Exe) => Some(default_runtime_lib()?),
    };
    let mut inputs: Vec<(&Path, &str)> = vec![(&options.input, "the input module")];
    inputs.extend(sidecars.inputs());
    inputs.extend(
        options
            .rules
            .iter()
            .map(|r| (r.as_path(), "a rule file (--rules)")),
    );
    inputs.extend(runtime.as_deref().map(|r| (r, "the runtime library")));
    inputs.extend(
        options
            .datastore
            .as_deref()
            .map(|d| (d, "the datastore (--datastore)")),
    );
    ditto_files::refuse_overwrite("-o", &options.output, &[(&options.output, "")], &inputs)?;
    // The datastore, checked against the module's tokenizer and vocabulary
    // before the pipeline runs.
    if let Some(datastore) = &options.datastore {
        check_datastore(datastore, &sidecars, &model, &options.input)?;
    }

    // The payload layout of the weight ops as they are (no pass adds or
    // removes one), checked against the weight file before compiling.
    let used = ditto_passes::weights::weights_used(&module)?;
    let layout = payload::WeightLayout::new(&sidecars.weights, &used)?;
    // The rule files, read here first so that a bad one is reported as such
    // (ditto-select-kernels reads them again, from its comma-separated
    // `rules` option).
    if let Some(path) = options
        .rules
        .iter()
        .find(|p| p.to_string_lossy().contains([',', '"']))
    {
        return Err(CodegenError::new(format!(
            "--rules {}: a rule file's path cannot contain `,` or `\"` (rename or link the file)",
            path.display()
        )));
    }
    ditto_passes::select::rule_set(&options.rules)?;
    let pipeline = pipeline::dittoc(options.codebook_kernels, &options.rules);
    ditto_ir::run_pipeline(&context, &mut module, &pipeline, options.print_ir_after_all)?;
    layout.check_compiled(&module)?;

    match options.emit {
        Emit::Mlir => {
            return Ok(ditto_files::write(
                &options.output,
                format!("{}\n", module.as_operation()),
            )?)
        }
        Emit::Llvm | Emit::Obj => {
            let llvm = llvm::translate(&module, &model.compiled_shape())?;
            let staged = ditto_files::Staged::new(&options.output)?;
            llvm::optimize_and_write(
                &llvm,
                &options.target,
                staged.path(),
                options.emit == Emit::Obj,
            )
            .map_err(|e| naming_output(e, &staged))?;
            return Ok(staged.commit()?);
        }
        Emit::Exe => {}
    }
    let llvm = llvm::translate(&module, &model.compiled_shape())?;
    let object = ditto_files::scratch(&options.output, ".o")?;
    llvm::optimize_and_write(&llvm, &options.target, &object, true)?;
    // Linked and given its payload under a temporary name beside the
    // output, then renamed onto it: an executable that exists is replaced
    // only by a complete one.
    let staged = ditto_files::Staged::executable(&options.output)?;
    let runtime =
        runtime.ok_or_else(|| CodegenError::new("internal error: no runtime library to link"))?;
    link(&object, &runtime, staged.path()).map_err(|e| naming_output(e, &staged))?;
    drop(object);
    payload::append(
        staged.path(),
        &layout,
        &sidecars.tokenizer,
        &sidecars.tokenizer_config,
        options.datastore.as_deref(),
        model,
    )
    .map_err(|e| naming_output(e, &staged))?;
    Ok(staged.commit()?)
}

/// Checks that `datastore` is a datastore file built with the module's
/// tokenizer (its fingerprint, `ditto_contracts::payload::tokenizer_fingerprint`)
/// whose token ids the model has, naming both tokenizers when not.
fn check_datastore(
    datastore: &Path,
    sidecars: &Sidecars,
    model: &ModelConfig,
    module: &Path,
) -> Result<(), CodegenError> {
    let tokenizer = std::fs::read(&sidecars.tokenizer).map_err(|e| {
        CodegenError::new(format!(
            "{}: cannot read: {e}",
            sidecars.tokenizer.display()
        ))
    })?;
    let fingerprint = ditto_contracts::payload::tokenizer_fingerprint(&tokenizer);
    let expect = ditto_datastore::file::Expect {
        fingerprint: &fingerprint,
        vocab: u32::try_from(model.vocab).unwrap_or(u32::MAX),
        order: ditto_datastore::file::Order::Full,
    };
    match ditto_datastore::file::open(datastore, expect) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.problem,
                ditto_datastore::file::Problem::Fingerprint { .. }
            ) =>
        {
            Err(CodegenError::new(format!(
                "--datastore {e} (the tokenizer of {}: {}); build the datastore with \
                 `dittoc datastore build ... --tokenizer {}`",
                module.display(),
                sidecars.tokenizer.display(),
                module.display()
            )))
        }
        Err(e) => Err(CodegenError::new(format!("--datastore {e}"))),
    }
}

/// `error` with the temporary file of `staged` named as the output it becomes.
fn naming_output(error: CodegenError, staged: &ditto_files::Staged) -> CodegenError {
    let temporary = staged.path().display().to_string();
    let target = staged.target().display().to_string();
    match error {
        CodegenError::Message(m) => CodegenError::Message(m.replace(&temporary, &target)),
        other => other,
    }
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
