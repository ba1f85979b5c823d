//! `ditto_rt_main`, called by the `main` that dittoc generates:
//!
//! ```c
//! int ditto_rt_main(int argc, char** argv, void* decode_fn, void* prefill_fn, void* lm_head_fn,
//!                   const int64_t* model_shape);
//! ```
//!
//! The three function pointers are the `_mlir_ciface_ditto_*` functions;
//! `model_shape` points at the 7 dimensions they were compiled for
//! (`ditto_contracts::model::CompiledShape`), which the payload's manifest
//! must repeat. Every error
//! becomes a message on stderr and exit code 1 (2 for a bad command line);
//! no panic crosses into C.

use std::ffi::{c_char, c_int, c_void, CStr, OsString};
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use clap::Parser;

use crate::app::{self, Console};
use crate::cli::Args;
use crate::model::EntryPoints;
use crate::Error;

/// # Safety
/// `argv` must hold `argc` C strings; the pointers must be the generated
/// entry points of a model, and `model_shape` the 7 dimensions of
/// `ditto_contracts::model::CompiledShape` they were compiled for.
#[no_mangle]
pub unsafe extern "C" fn ditto_rt_main(
    argc: c_int,
    argv: *const *const c_char,
    decode_fn: *const c_void,
    prefill_fn: *const c_void,
    lm_head_fn: *const c_void,
    model_shape: *const i64,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let args = c_args(argc, argv);
        let entry = EntryPoints::from_raw(decode_fn, prefill_fn, lm_head_fn, model_shape);
        let mut stdout = std::io::stdout();
        let mut console = Console {
            out_is_terminal: stdout.is_terminal(),
            out: &mut stdout,
            err: &mut std::io::stderr(),
        };
        match entry {
            Ok(entry) => main_with(args, Path::new("/proc/self/exe"), entry, &mut console),
            Err(e) => fail(&mut console, &e),
        }
    }));
    outcome.unwrap_or_else(|_| {
        eprintln!("error: internal error in the ditto runtime (a bug: please report it)");
        1
    })
}

/// The whole program after the C boundary: parse `argv`, run, turn the
/// outcome into an exit code. The payload is read from `payload_path`.
pub fn main_with(
    argv: Vec<OsString>,
    payload_path: &Path,
    entry: EntryPoints,
    console: &mut Console,
) -> c_int {
    let args = match Args::try_parse_from(&argv) {
        Ok(args) => args,
        Err(e) => {
            let e = as_written(e, &argv);
            // --help and --version land here too, with exit code 0.
            let text = e.render().to_string();
            let sink = if e.use_stderr() {
                &mut console.err
            } else {
                &mut console.out
            };
            let _ = sink.write_all(text.as_bytes()).and_then(|()| sink.flush());
            return e.exit_code();
        }
    };
    match app::run(&args, payload_path, entry, console) {
        Ok(()) => 0,
        Err(e) => fail(console, &e),
    }
}

/// clap names a flag in its errors by its long form (`'--max-new-tokens
/// <N>'`); when the command line spelled it short (`-n -1`), the error names
/// it so.
fn as_written(mut e: clap::Error, argv: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg).cloned() else {
        return e;
    };
    let args: Vec<&str> = argv.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let command = <Args as clap::CommandFactory>::command();
    for arg in command.get_arguments() {
        let (Some(short), Some(long)) = (arg.get_short(), arg.get_long()) else {
            continue;
        };
        let long = format!("--{long}");
        let Some(rest) = shown.strip_prefix(&long) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            continue;
        }
        let short = format!("-{short}");
        let wrote_short = args
            .iter()
            .any(|a| !a.starts_with("--") && a.starts_with(&short));
        let wrote_long = args
            .iter()
            .any(|a| *a == long || a.starts_with(&format!("{long}=")));
        if wrote_short && !wrote_long {
            e.insert(
                ContextKind::InvalidArg,
                ContextValue::String(format!("{short}{rest}")),
            );
        }
        break;
    }
    e
}

fn fail(console: &mut Console, e: &Error) -> c_int {
    let _ = console.out.flush();
    let _ = writeln!(console.err, "error: {e}");
    e.exit_code()
}

/// `argv` as Rust strings (bytes kept as they are: paths need not be UTF-8).
unsafe fn c_args(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let mut args = Vec::new();
    if !argv.is_null() {
        for i in 0..argc.max(0) as usize {
            let arg = *argv.add(i);
            if arg.is_null() {
                break;
            }
            args.push(std::ffi::OsStr::from_bytes(CStr::from_ptr(arg).to_bytes()).to_os_string());
        }
    }
    if args.is_empty() {
        args.push(OsString::from("model"));
    }
    args
}
