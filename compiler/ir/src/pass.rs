//! Passes written in Rust, registered with MLIR's pass registry.
//!
//! A [`PassDefinition`] names a pass, its options and the function that runs
//! it on a `builtin.module`. Once [`register`]ed, the pass is MLIR's like any
//! upstream one: MLIR's pipeline parser finds it by its argument
//! (`builtin.module(ditto-select-kernels{codebook-kernels=dequantize})`), MLIR
//! parses its options and prints it in pipelines and in
//! `--mlir-print-ir-after-all`, and a [`PassError`] it returns becomes an
//! error diagnostic on the op it names (which is what `--verify-diagnostics`
//! checks). [`opt_main`] is `mlir-opt` with every registered pass.
//!
//! The C API's external passes cannot be registered under a name or take
//! options, so a small C++ file (`cpp/passes.cpp`) does that part.

use std::{
    ffi::{c_char, c_void, CStr, CString},
    mem::ManuallyDrop,
    panic::{catch_unwind, AssertUnwindSafe},
    process::ExitCode,
};

use melior::{
    dialect::DialectRegistry,
    ir::{
        operation::{OperationLike, OperationRef},
        Location, Module,
    },
    utility::{register_all_dialects, register_all_passes},
    Context,
};
use mlir_sys::{MlirDialectRegistry, MlirLocation, MlirOperation};

/// A pass failure: a message, and the op it concerns when there is one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", location.as_ref().map(|(text, _)| format!("{text}: ")).unwrap_or_default())]
pub struct PassError {
    pub message: String,
    /// The op's location, printed, and as MLIR's handle (valid while the
    /// context lives; used only by the pass that made the error).
    location: Option<(String, MlirLocation)>,
}

impl PassError {
    /// An error that concerns no op in particular.
    pub fn new(message: impl Into<String>) -> Self {
        PassError {
            message: message.into(),
            location: None,
        }
    }

    /// An error about `op`, reported at its location.
    pub fn at(op: OperationRef, message: impl Into<String>) -> Self {
        let location = op.location();
        PassError {
            message: message.into(),
            location: Some((location.to_string(), location.to_raw())),
        }
    }

    /// Emits the error as an MLIR diagnostic, at its op or else at `fallback`.
    fn emit(&self, fallback: Location) {
        let location = self
            .location
            .as_ref()
            .map(|(_, raw)| *raw)
            .unwrap_or_else(|| fallback.to_raw());
        let message = c_string(&self.message);
        // SAFETY: the location belongs to the context the pass runs in.
        unsafe { mlir_sys::mlirEmitError(location, message.as_ptr()) };
    }
}

/// One option of a pass: `name=value` in the pipeline, a string the pass
/// parses itself.
pub struct PassOption {
    pub name: &'static CStr,
    pub description: &'static CStr,
    pub default: &'static CStr,
}

/// A pass on `builtin.module`, written in Rust.
pub struct PassDefinition {
    /// Its name in pipelines, e.g. `ditto-select-kernels`.
    pub argument: &'static CStr,
    /// Its name in IR dumps, e.g. `DittoSelectKernels`.
    pub name: &'static CStr,
    pub description: &'static CStr,
    pub options: &'static [PassOption],
    /// Checks the options when a pipeline is parsed (the message is MLIR's
    /// pipeline error).
    pub check: fn(&PassOptions) -> Result<(), String>,
    pub run: fn(&Context, &Module, &PassOptions) -> Result<(), PassError>,
}

/// The option values a pass runs with, by name.
pub struct PassOptions<'a> {
    options: &'static [PassOption],
    values: Vec<&'a str>,
}

impl<'a> PassOptions<'a> {
    /// Option values given in the order of `options`.
    pub fn new(options: &'static [PassOption], values: Vec<&'a str>) -> Self {
        assert_eq!(options.len(), values.len(), "one value per option");
        PassOptions { options, values }
    }

    /// Every option at its default.
    pub fn defaults(options: &'static [PassOption]) -> PassOptions<'static> {
        PassOptions {
            options,
            values: options
                .iter()
                .map(|o| o.default.to_str().expect("UTF-8 default"))
                .collect(),
        }
    }

    /// The value of option `name` (one the definition declares).
    pub fn get(&self, name: &str) -> &'a str {
        let index = self
            .options
            .iter()
            .position(|o| o.name.to_bytes() == name.as_bytes())
            .unwrap_or_else(|| panic!("the pass declares no option `{name}`"));
        self.values[index]
    }
}

/// The pass as cpp/passes.cpp sees it.
#[repr(C)]
struct RawPassOption {
    name: *const c_char,
    description: *const c_char,
    default_value: *const c_char,
}

#[repr(C)]
struct RawPassDefinition {
    argument: *const c_char,
    name: *const c_char,
    description: *const c_char,
    options: *const RawPassOption,
    option_count: usize,
    check: unsafe extern "C" fn(*const RawPassDefinition, *const *const c_char) -> *mut c_char,
    run:
        unsafe extern "C" fn(*const RawPassDefinition, MlirOperation, *const *const c_char) -> bool,
    free_message: unsafe extern "C" fn(*mut c_char),
    rust: *const c_void,
}

extern "C" {
    fn dittoRegisterPass(definition: *const RawPassDefinition);
    fn dittoOptMain(
        argc: i32,
        argv: *mut *mut c_char,
        tool_name: *const c_char,
        registry: MlirDialectRegistry,
        irdl_file: *const c_char,
        check_input: unsafe extern "C" fn(*const c_char, usize, *const c_char) -> *mut c_char,
        free_message: unsafe extern "C" fn(*mut c_char),
    ) -> i32;
}

/// Registers `definition` with MLIR's pass registry. Call once per pass and
/// process (MLIR refuses a second registration of one argument).
pub fn register(definition: &'static PassDefinition) {
    let options: Vec<RawPassOption> = definition
        .options
        .iter()
        .map(|o| RawPassOption {
            name: o.name.as_ptr(),
            description: o.description.as_ptr(),
            default_value: o.default.as_ptr(),
        })
        .collect();
    let raw = Box::new(RawPassDefinition {
        argument: definition.argument.as_ptr(),
        name: definition.name.as_ptr(),
        description: definition.description.as_ptr(),
        option_count: options.len(),
        options: options.leak().as_ptr(),
        check: check_callback,
        run: run_callback,
        free_message,
        rust: definition as *const PassDefinition as *const c_void,
    });
    // SAFETY: the definition is leaked: it lives as long as the registry.
    unsafe { dittoRegisterPass(Box::leak(raw)) };
}

/// The Rust definition and the option values behind a raw call; an error
/// names an option whose value is not UTF-8.
///
/// # Safety
/// `raw` comes from [`register`] and `values` holds one C string per option.
unsafe fn unpack<'a>(
    raw: *const RawPassDefinition,
    values: *const *const c_char,
) -> (&'static PassDefinition, Result<PassOptions<'a>, String>) {
    let definition = unsafe { &*((*raw).rust as *const PassDefinition) };
    let values = definition
        .options
        .iter()
        .enumerate()
        .map(|(i, option)| {
            let value = unsafe { CStr::from_ptr(*values.add(i)) };
            value.to_str().map_err(|_| {
                format!(
                    "the value of option `{}` is not UTF-8",
                    option.name.to_string_lossy()
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|values| PassOptions::new(definition.options, values));
    (definition, values)
}

unsafe extern "C" fn check_callback(
    raw: *const RawPassDefinition,
    values: *const *const c_char,
) -> *mut c_char {
    let (definition, options) = unsafe { unpack(raw, values) };
    let result = options.and_then(|options| {
        catch_unwind(AssertUnwindSafe(|| (definition.check)(&options)))
            .unwrap_or_else(|panic| Err(format!("internal error: {}", panic_message(&panic))))
    });
    match result {
        Ok(()) => std::ptr::null_mut(),
        Err(message) => c_string(&message).into_raw(),
    }
}

unsafe extern "C" fn run_callback(
    raw: *const RawPassDefinition,
    operation: MlirOperation,
    values: *const *const c_char,
) -> bool {
    let (definition, options) = unsafe { unpack(raw, values) };
    // SAFETY: MLIR runs the pass on a live `builtin.module` of a live
    // context; the module is borrowed, never dropped here.
    let op = unsafe { OperationRef::from_raw(operation) };
    // `to_ref` views the ContextRef itself as a Context: keep it alive.
    let context_ref = op.context();
    let context = unsafe { context_ref.to_ref() };
    let module = ManuallyDrop::new(unsafe {
        Module::from_raw(mlir_sys::mlirModuleFromOperation(operation))
    });
    let result = options.map_err(PassError::new).and_then(|options| {
        catch_unwind(AssertUnwindSafe(|| {
            (definition.run)(context, &module, &options)
        }))
        .unwrap_or_else(|panic| {
            Err(PassError::new(format!(
                "internal error in {}: {}",
                definition.argument.to_string_lossy(),
                panic_message(&panic)
            )))
        })
    });
    match result {
        Ok(()) => true,
        Err(error) => {
            error.emit(op.location());
            false
        }
    }
}

/// ditto-opt's check of its input before MLIR parses it: nesting within
/// [`crate::nesting::MAX_DEPTH`] (MLIR's recursive parser would overflow its
/// stack). Returns the error message, or null.
unsafe extern "C" fn check_input_callback(
    text: *const c_char,
    size: usize,
    name: *const c_char,
) -> *mut c_char {
    // SAFETY: MLIR's input buffer and its NUL-terminated name, live for the call.
    let (text, name) = unsafe {
        (
            std::slice::from_raw_parts(text.cast::<u8>(), size),
            CStr::from_ptr(name).to_string_lossy(),
        )
    };
    match crate::nesting::check(text, &name, crate::nesting::MAX_DEPTH) {
        Ok(()) => std::ptr::null_mut(),
        Err(error) => c_string(&error.to_string()).into_raw(),
    }
}

unsafe extern "C" fn free_message(message: *mut c_char) {
    drop(unsafe { CString::from_raw(message) });
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// A C string of `text` (a NUL inside is shown as U+FFFD).
fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{fffd}")).expect("no NUL left")
}

/// Runs `mlir-opt`'s main (MLIR's options: `--pass-pipeline`,
/// `--split-input-file`, `--verify-diagnostics`, `--mlir-print-ir-after-all`,
/// …) on the process's arguments, with every upstream dialect and pass, the
/// passes [`register`]ed before, and the project's IRDL dialects. An input
/// nested deeper than [`crate::nesting::MAX_DEPTH`] is refused before MLIR
/// parses it (`FILE:LINE:COL: error: …`, exit code 1).
pub fn opt_main(tool_name: &str) -> ExitCode {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    register_all_passes();
    // MLIR loads IRDL dialects into each context it makes from a file.
    let irdl = match write_irdl() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{tool_name}: cannot write the dialects' IRDL to a temporary file: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The file is already unlinked: MLIR opens it through this process's
    // descriptor, and nothing is left behind however the process ends
    // (`--help` exits from inside MLIR's option parser).
    let irdl_path = c_string(&format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&irdl)
    ));
    let arguments: Vec<CString> = std::env::args_os()
        .map(|a| {
            use std::os::unix::ffi::OsStrExt;
            CString::new(a.as_bytes().to_vec()).unwrap_or_else(|_| c_string("\u{fffd}"))
        })
        .collect();
    let mut argv: Vec<*mut c_char> = arguments
        .iter()
        .map(|a| a.as_ptr() as *mut c_char)
        .chain([std::ptr::null_mut()])
        .collect();
    let tool = c_string(tool_name);
    // SAFETY: argv is NUL-terminated and outlives the call; the registry too.
    let code = unsafe {
        dittoOptMain(
            arguments.len() as i32,
            argv.as_mut_ptr(),
            tool.as_ptr(),
            registry.to_raw(),
            irdl_path.as_ptr(),
            check_input_callback,
            free_message,
        )
    };
    drop(irdl);
    if code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The project's IRDL in an anonymous (already unlinked) temporary file.
fn write_irdl() -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let mut file = tempfile::tempfile()?;
    file.write_all(ditto_dialects::irdl_source().as_bytes())?;
    file.flush()?;
    Ok(file)
}
