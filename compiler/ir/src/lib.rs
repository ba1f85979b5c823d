//! MLIR set-up shared by every stage of dittoc: one context with the upstream
//! dialects, passes and LLVM translations registered and the project's IRDL
//! dialects loaded, parsing that reports MLIR's diagnostics as errors,
//! running a textual pass pipeline, and ([`pass`]) registering passes written
//! in Rust with MLIR's pass registry.

pub mod nesting;
pub mod pass;
pub use pass::PassError;

use std::{cell::RefCell, path::Path, rc::Rc};

use melior::{
    diagnostic::{Diagnostic, DiagnosticSeverity},
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

/// Collects MLIR diagnostics emitted on `context` while `f` runs, each as
/// MLIR's command-line tools print it: `FILE:LINE:COL: error: message`, its
/// notes on lines of their own.
pub fn with_diagnostics<T>(context: &Context, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    with_diagnostics_in(context, None, f)
}

/// [`with_diagnostics`], with the line and a caret under the column added to
/// each diagnostic in `source` (its name and text).
fn with_diagnostics_in<T>(
    context: &Context,
    source: Option<(&str, &str)>,
    f: impl FnOnce() -> T,
) -> (T, Vec<String>) {
    let collected = Rc::new(RefCell::new(Vec::new()));
    let sink = collected.clone();
    let source: Option<(String, String)> = source.map(|(n, t)| (n.to_string(), t.to_string()));
    let id = context.attach_diagnostic_handler(move |diagnostic| {
        let source = source.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
        let mut text = format_diagnostic(&diagnostic, source);
        for index in 0..diagnostic.note_count() {
            if let Ok(note) = diagnostic.note(index) {
                text.push('\n');
                text.push_str(&format_diagnostic(&note, source));
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

/// `FILE:LINE:COL: SEVERITY: MESSAGE` (a location of another kind as MLIR
/// prints it), then the source line and a caret when the location is in
/// `source`.
fn format_diagnostic(diagnostic: &Diagnostic, source: Option<(&str, &str)>) -> String {
    let severity = match diagnostic.severity() {
        DiagnosticSeverity::Error => "error",
        DiagnosticSeverity::Warning => "warning",
        DiagnosticSeverity::Note => "note",
        DiagnosticSeverity::Remark => "remark",
    };
    let mut location = diagnostic.location();
    if location.is_name() && location.name_child_location().is_file_line_col_range() {
        location = location.name_child_location();
    }
    if !location.is_file_line_col_range() {
        return format!("{location}: {severity}: {diagnostic}");
    }
    let file = location.file_line_col_range_filename();
    let file = file.as_string_ref();
    let file = file.as_str().unwrap_or("?");
    let (line, column) = (
        location.file_line_col_range_start_line(),
        location.file_line_col_range_start_column(),
    );
    let mut text = format!("{file}:{line}:{column}: {severity}: {diagnostic}");
    if let Some((_, source)) = source.filter(|(name, _)| *name == file) {
        if let Some(excerpt) = excerpt(source, line, column) {
            text.push('\n');
            text.push_str(&excerpt);
        }
    }
    text
}

/// Line `line` of `text` (1-based) and a caret under byte column `column`
/// (1-based), as MLIR's tools show a diagnostic's place; a long line is cut
/// to the part around the column.
fn excerpt(text: &str, line: usize, column: usize) -> Option<String> {
    const WIDTH: usize = 120;
    let source_line = text.split('\n').nth(line.checked_sub(1)?)?;
    let source_line = source_line.strip_suffix('\r').unwrap_or(source_line);
    let len = source_line.len();
    let floor = |i: usize| (0..=i).rev().find(|&i| source_line.is_char_boundary(i));
    let at = floor(column.checked_sub(1)?.min(len))?;
    let start = floor(at.saturating_sub(WIDTH / 2).min(len.saturating_sub(WIDTH)))?;
    let end = floor((start + WIDTH).min(len))?;
    let indent: String = source_line[start..at]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let (cut_start, cut_end) = (start > 0, end < len);
    Some(format!(
        "{}{}{}\n{}{indent}^",
        if cut_start { "…" } else { "" },
        &source_line[start..end],
        if cut_end { "…" } else { "" },
        if cut_start { " " } else { "" },
    ))
}

/// Parses MLIR text; `source_name` names the text in locations and errors.
/// Top-level ops outside an explicit `module` get an implicit one, as in
/// `mlir-opt`. A syntax error is MLIR's diagnostic at its line and column
/// (with the line and a caret); text nested deeper than
/// [`nesting::MAX_DEPTH`] brackets is refused before MLIR's recursive parser
/// sees it.
pub fn parse_module<'c>(
    context: &'c Context,
    text: &str,
    source_name: &str,
) -> Result<Module<'c>, MlirError> {
    nesting::check(text.as_bytes(), source_name, nesting::MAX_DEPTH).map_err(|e| MlirError {
        what: format!("{source_name}: nested too deeply to parse"),
        diagnostics: vec![e.to_string()],
    })?;
    let (module, diagnostics) = with_diagnostics_in(context, Some((source_name, text)), || {
        // SAFETY: the context is live and the strings outlive the call; the
        // module returned (if any) is owned by the caller.
        unsafe {
            let raw = dittoParseModule(
                context.to_raw(),
                StringRef::new(text).to_raw(),
                StringRef::new(source_name).to_raw(),
            );
            Module::from_option_raw(raw)
        }
    });
    let module = module.ok_or_else(|| MlirError {
        what: format!("{source_name}: not a valid MLIR module"),
        diagnostics,
    })?;
    verify_in(context, &module, source_name, Some(text))?;
    Ok(module)
}

extern "C" {
    /// cpp/parse.cpp: the text's top-level ops in one `builtin.module`, or
    /// null after MLIR's diagnostics.
    fn dittoParseModule(
        context: mlir_sys::MlirContext,
        text: mlir_sys::MlirStringRef,
        name: mlir_sys::MlirStringRef,
    ) -> mlir_sys::MlirModule;
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
    verify_in(context, module, source_name, None)
}

/// [`verify`], showing the line of each diagnostic in `text` (the module's
/// source, named `source_name`).
fn verify_in(
    context: &Context,
    module: &Module,
    source_name: &str,
    text: Option<&str>,
) -> Result<(), MlirError> {
    use melior::ir::operation::OperationLike;
    let source = text.map(|text| (source_name, text));
    let (ok, diagnostics) = with_diagnostics_in(context, source, || module.as_operation().verify());
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
        .map(string_value)
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

/// Whether LLVM's code generator for this machine's target knows the CPU
/// name `cpu` (as `--target-cpu` gives it); `None` if LLVM has no target for
/// this machine.
pub fn host_target_knows_cpu(cpu: &str) -> Option<bool> {
    extern "C" {
        /// cpp/target.cpp: 1 known, 0 unknown, -1 no host target.
        fn dittoHostTargetKnowsCpu(cpu: *const std::ffi::c_char) -> i32;
    }
    let cpu = std::ffi::CString::new(cpu).ok()?;
    // SAFETY: a NUL-terminated string, live for the call.
    match unsafe { dittoHostTargetKnowsCpu(cpu.as_ptr()) } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// This machine's CPU, as LLVM names it (`znver3`, `skylake-avx512`, …).
pub fn host_cpu_name() -> String {
    extern "C" {
        /// cpp/target.cpp.
        fn dittoHostCpuName(out: *mut std::ffi::c_char, size: usize);
    }
    let mut buffer = [0u8; 128];
    // SAFETY: the buffer is live and its size given.
    unsafe { dittoHostCpuName(buffer.as_mut_ptr().cast(), buffer.len()) };
    std::ffi::CStr::from_bytes_until_nul(&buffer)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
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

/// The text of a string attribute (invalid UTF-8 replaced). melior's
/// `StringAttribute::value` indexes before the start of an empty string
/// (a panic on `name = ""`); this reads MLIR's string reference by its
/// length instead.
pub fn string_value(attribute: melior::ir::attribute::StringAttribute<'_>) -> String {
    use melior::ir::attribute::AttributeLike;
    // SAFETY: the attribute is live; MLIR owns the bytes for the context's
    // lifetime, and `length` of them are readable.
    unsafe {
        let raw = mlir_sys::mlirStringAttrGetValue(attribute.to_raw());
        if raw.data.is_null() || raw.length == 0 {
            return String::new();
        }
        let bytes = std::slice::from_raw_parts(raw.data.cast::<u8>(), raw.length);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melior::ir::operation::OperationLike;

    const ALIASED: &str = "#map = affine_map<(d0) -> (d0)>\n\
                           module attributes {x.n = 1 : i64} {\n\
                           \x20 func.func @f(%a: memref<4xf32>) {\n\
                           \x20   %0 = arith.addf\n\
                           \x20   return\n\
                           \x20 }\n\
                           }\n";

    fn parse_error(text: &str) -> MlirError {
        let context = create_context().unwrap();
        let error = match parse_module(&context, text, "m.mlir") {
            Ok(_) => panic!("parsed:\n{text}"),
            Err(e) => e,
        };
        error
    }

    #[test]
    fn a_syntax_error_is_mlirs_diagnostic_at_its_line_and_column() {
        // A module that starts with aliases, as imported ones do: the error
        // used to be `1:9: expected operation name in quotes`, from a second
        // parse of the text wrapped in `module {…}`.
        let error = parse_error(ALIASED);
        assert_eq!(error.what, "m.mlir: not a valid MLIR module");
        assert_eq!(
            error.diagnostics,
            ["m.mlir:4:20: error: expected SSA operand\n    %0 = arith.addf\n                   ^"]
        );
    }

    #[test]
    fn a_syntax_error_outside_a_module_is_at_its_line_and_column() {
        let error =
            parse_error("func.func @f() {\n  return\n}\nfunc.func @g() {\n  %1 = arith.bogus\n}\n");
        assert_eq!(error.diagnostics.len(), 1, "{error}");
        assert!(
            error.diagnostics[0]
                .starts_with("m.mlir:5:8: error: custom op 'arith.bogus' is unknown"),
            "{error}"
        );
    }

    #[test]
    fn top_level_ops_get_an_implicit_module() {
        let context = create_context().unwrap();
        for text in [
            "",
            "func.func private @f()",
            "#map = affine_map<(d0) -> (d0)>\nfunc.func private @f()\nfunc.func private @g()",
            "module attributes {x.n = 1 : i64} {}",
        ] {
            let module = parse_module(&context, text, "m.mlir").unwrap_or_else(|e| panic!("{e}"));
            assert!(module.as_operation().verify(), "{text}");
        }
        let one = parse_module(&context, "module attributes {x.n = 1 : i64} {}", "m.mlir").unwrap();
        assert_eq!(
            integer_attribute(&one, "x.n").unwrap(),
            1,
            "the module itself, not wrapped"
        );
        let two = parse_module(
            &context,
            "func.func private @f()\nfunc.func private @g()",
            "m.mlir",
        )
        .unwrap();
        let names: Vec<String> = two
            .as_operation()
            .to_string()
            .lines()
            .filter(|l| l.contains("func.func"))
            .map(|l| l.trim().to_string())
            .collect();
        assert_eq!(names, ["func.func private @f()", "func.func private @g()"]);
    }

    #[test]
    fn a_module_that_does_not_verify_says_so() {
        let error = parse_error("func.func @f() -> i32 {\n  return\n}\n");
        assert_eq!(error.what, "m.mlir: the module does not verify");
        assert!(
            error.diagnostics[0].starts_with("m.mlir:2:3: error: 'func.return' op has 0 operands"),
            "{error}"
        );
        assert!(
            error.diagnostics[0].contains("\n  return\n  ^\n"),
            "{error}"
        );
    }

    #[test]
    fn cpu_names_are_checked_against_the_host_target() {
        assert_eq!(host_target_knows_cpu("z80"), Some(false));
        assert_eq!(host_target_knows_cpu(""), Some(false));
        let generic = if cfg!(target_arch = "x86_64") {
            "x86-64"
        } else {
            "generic"
        };
        assert_eq!(host_target_knows_cpu(generic), Some(true));
        assert_eq!(host_target_knows_cpu(&host_cpu_name()), Some(true));
    }

    #[test]
    fn diagnostics_in_long_lines_show_the_part_around_the_column() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let shown = excerpt(&line, 1, 501).unwrap();
        let (text, caret) = shown.split_once('\n').unwrap();
        assert!(text.starts_with('…') && text.ends_with('…'), "{shown}");
        assert_eq!(text.chars().position(|c| c == 'X'), Some(caret.len() - 1));
        let short = "x".repeat(119);
        assert_eq!(
            excerpt(&short, 1, 119).unwrap(),
            format!("{short}\n{}^", " ".repeat(118))
        );
        let end = excerpt(&"y".repeat(1000), 1, 1001).unwrap();
        assert_eq!(end, format!("…{}\n {}^", "y".repeat(120), " ".repeat(120)));
        assert_eq!(excerpt("ab\n\tcd", 2, 3).unwrap(), "\tcd\n\t ^");
        assert_eq!(excerpt("ab", 2, 1), None);
        assert_eq!(excerpt("é", 1, 2).unwrap(), "é\n^");
    }

    /// `n` nested `scf.execute_region`s in a function.
    fn nested_regions(n: usize) -> String {
        format!(
            "func.func @f() {{\n{}scf.yield\n{}}}\nreturn\n}}\n",
            "scf.execute_region {\n".repeat(n),
            "}\nscf.yield\n".repeat(n - 1)
        )
    }

    #[test]
    fn deep_nesting_is_refused_before_mlir_parses_it() {
        // 100,000 regions or arrays overflow MLIR's recursive parser (an
        // abort); they are refused at the line where the limit is crossed
        // (line 1 opens the function's body, line k + 1 the k-th region).
        let error = parse_error(&nested_regions(100_000));
        assert_eq!(error.what, "m.mlir: nested too deeply to parse");
        assert_eq!(
            error.diagnostics[0],
            format!(
                "m.mlir:{}:20: error: nested more than {} levels deep (brackets `{{`, `[`, `(`, `<` \
                 and the operators of an expression, together): refused before parsing, which would \
                 overflow MLIR's recursive parser's stack",
                nesting::MAX_DEPTH + 1,
                nesting::MAX_DEPTH
            )
        );
        let n = 100_000;
        let error = parse_error(&format!(
            "module attributes {{x.a = {}{}}} {{}}",
            "[".repeat(n),
            "]".repeat(n)
        ));
        assert!(error.diagnostics[0].starts_with("m.mlir:1:"), "{error}");
        // No bracket, but one recursion per operator: `- - … d0` aborted at
        // 7,500, `d0 + d0 + …` at 52,000.
        for expression in ["- ".repeat(n) + "d0", "d0".to_string() + &" + d0".repeat(n)] {
            let error = parse_error(&format!(
                "#m = affine_map<(d0) -> ({expression})>\nmodule attributes {{x.m = #m}} {{}}"
            ));
            assert_eq!(error.what, "m.mlir: nested too deeply to parse", "{error}");
        }
    }

    #[test]
    fn nesting_up_to_the_limit_parses_on_a_small_stack() {
        // Rust's spawned threads (the test threads among them) have 2 MiB
        // of stack, a quarter of a main thread's.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let context = create_context().unwrap();
                let depth = nesting::MAX_DEPTH;
                // The function's body is one level.
                parse_module(&context, &nested_regions(depth - 1), "m.mlir").unwrap();
                let attribute = format!(
                    "module attributes {{x.a = {}{}}} {{}}",
                    "[".repeat(depth - 1),
                    "]".repeat(depth - 1)
                );
                let module = parse_module(&context, &attribute, "m.mlir").unwrap();
                assert!(module.as_operation().to_string().contains("[[[["));
                // `affine_map<(` opens two levels, each `-` is one.
                let minus = format!(
                    "#m = affine_map<(d0) -> ({}d0)>\nmodule attributes {{x.m = #m}} {{}}",
                    "- ".repeat(depth - 2)
                );
                parse_module(&context, &minus, "m.mlir").unwrap();
                let error = parse_module(&context, &nested_regions(depth), "m.mlir").unwrap_err();
                assert_eq!(error.what, "m.mlir: nested too deeply to parse");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
