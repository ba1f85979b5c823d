// libFuzzer's `main`, defined in each target's binary (included by
// fuzz_targets/*.rs).
//
// The targets link MLIR (ditto-import depends on ditto-ir), whose static
// library libMLIRMlirOptMain.a defines a `main` too (mlir-opt's). The linker
// took that one rather than libFuzzer's, and the "fuzzer" ran mlir-opt's
// command line. A `main` in the binary's own object file is linked before
// either archive is searched, so neither archive's `main` is pulled in.

/// Runs libFuzzer's driver with the target `fuzz_target!` defined.
#[no_mangle]
pub extern "C" fn main(
    mut argc: std::os::raw::c_int,
    mut argv: *mut *mut std::os::raw::c_char,
) -> std::os::raw::c_int {
    extern "C" {
        fn LLVMFuzzerRunDriver(
            argc: *mut std::os::raw::c_int,
            argv: *mut *mut *mut std::os::raw::c_char,
            test_one_input: unsafe extern "C" fn(*const u8, usize) -> std::os::raw::c_int,
        ) -> std::os::raw::c_int;
        fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> std::os::raw::c_int;
    }
    // SAFETY: argc and argv are the process's own, as libFuzzer's main
    // would receive them; LLVMFuzzerTestOneInput is libfuzzer-sys's entry.
    unsafe { LLVMFuzzerRunDriver(&mut argc, &mut argv, LLVMFuzzerTestOneInput) }
}
