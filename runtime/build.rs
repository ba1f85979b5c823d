//! Links Debian's serial BLIS statically, so that `libditto_rt.a` carries it:
//! an executable then links with `cc model.o libditto_rt.a -lm -lpthread -ldl`.
//!
//! `DITTO_BLIS_LIB_DIR` points at another directory holding `libblis.a`
//! (a serial build: the runtime runs its own thread pool).

use std::path::PathBuf;

const DEBIAN_SERIAL_BLIS: &str = "/usr/lib/x86_64-linux-gnu/blis-serial";

fn main() {
    println!("cargo:rerun-if-env-changed=DITTO_BLIS_LIB_DIR");
    let dir = match std::env::var_os("DITTO_BLIS_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(DEBIAN_SERIAL_BLIS),
    };
    let archive = dir.join("libblis.a");
    if !archive.is_file() {
        panic!(
            "ditto-rt needs a static serial BLIS, but {} does not exist: \
             install libblis-serial-dev or set DITTO_BLIS_LIB_DIR to a directory holding libblis.a",
            archive.display()
        );
    }
    println!("cargo:rerun-if-changed={}", archive.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=blis");
}
