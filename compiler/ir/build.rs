//! Builds the C++ halves of `ditto_ir::pass` (cpp/passes.cpp), of parsing
//! (cpp/parse.cpp) and of the CPU-name check (cpp/target.cpp) against the
//! MLIR and LLVM headers of the LLVM that mlir-sys links
//! (`MLIR_SYS_220_PREFIX`, as in .cargo/config.toml, or `llvm-config` on
//! the PATH).

use std::{path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=cpp/passes.cpp");
    println!("cargo:rerun-if-changed=cpp/parse.cpp");
    println!("cargo:rerun-if-changed=cpp/target.cpp");
    println!("cargo:rerun-if-env-changed=MLIR_SYS_220_PREFIX");
    let include = match std::env::var_os("MLIR_SYS_220_PREFIX") {
        Some(prefix) => PathBuf::from(prefix).join("include"),
        None => {
            let out = Command::new("llvm-config")
                .arg("--includedir")
                .output()
                .expect("MLIR_SYS_220_PREFIX is unset and llvm-config does not run");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("cpp/passes.cpp")
        .file("cpp/parse.cpp")
        .file("cpp/target.cpp")
        .include(include)
        // LLVM is built without RTTI; a class deriving from mlir::Pass must
        // not ask for the base's typeinfo.
        .flag("-fno-rtti")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("ditto_ir_passes");
}
