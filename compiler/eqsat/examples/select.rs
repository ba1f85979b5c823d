//! Runs kernel selection on one term, for trying out rules without MLIR.
//!
//! ```text
//! cargo run -p ditto-eqsat --example select -- [--rules FILE]... [--no-builtin] [--explain] TERM
//! ```
//!
//! TERM is a term of the language (or `-` to read it from stdin). Prints the
//! trace: which rules fired, the stop reason, and the chosen kernel. Exit
//! status: 0 when a kernel was chosen, 1 when not, 2 on bad input.

use std::io::Read;
use std::process::ExitCode;

use ditto_eqsat::{select_with, RuleSet, SelectOptions, Term};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("select: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut files = Vec::new();
    let mut builtin = true;
    let mut options = SelectOptions::default();
    let mut term_text = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rules" => files.push(args.next().ok_or("--rules needs a file")?),
            "--no-builtin" => builtin = false,
            "--explain" => options.explain = true,
            "-h" | "--help" => {
                println!("usage: select [--rules FILE]... [--no-builtin] [--explain] TERM|-");
                return Ok(true);
            }
            _ if term_text.is_none() => term_text = Some(arg),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    let mut text = term_text.ok_or("no term given (try --help)")?;
    if text == "-" {
        text.clear();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
    }
    let mut rules = if builtin {
        RuleSet::builtin()
    } else {
        RuleSet::new()
    };
    for f in files {
        let set = RuleSet::from_file(&f).map_err(|e| e.to_string())?;
        rules.extend(set).map_err(|e| e.to_string())?;
    }
    let term: Term = text.trim().parse().map_err(|e| format!("bad term: {e}"))?;
    let sel = select_with(&term, &rules, &options);
    print!("{}", sel.trace());
    Ok(sel.kernel.is_some())
}
