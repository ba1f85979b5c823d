//! The LLVM half of codegen: translate the LLVM-dialect module in-process,
//! add the `main` that hands the entry points to the runtime, optimize at the
//! requested level for the chosen CPU, and write LLVM IR or an object file.

use std::{
    ffi::{CStr, CString},
    path::Path,
    ptr,
};

use ditto_contracts::model::CompiledShape;
use ditto_ir::melior::ir::Module;
use llvm_sys::{
    core::*,
    error::LLVMGetErrorMessage,
    prelude::*,
    target::{
        LLVMSetModuleDataLayout, LLVM_InitializeNativeAsmPrinter, LLVM_InitializeNativeTarget,
    },
    target_machine::*,
    transforms::pass_builder::{
        LLVMCreatePassBuilderOptions, LLVMDisposePassBuilderOptions, LLVMRunPasses,
    },
};

use crate::CodegenError;

/// Code generation settings.
#[derive(Clone, Debug)]
pub struct Target {
    /// 0..=3, as `-O`.
    pub opt_level: u8,
    /// `None` means the host CPU with its features.
    pub cpu: Option<String>,
}

/// An LLVM module with its own context.
pub struct LlvmModule {
    context: LLVMContextRef,
    module: LLVMModuleRef,
}

impl Drop for LlvmModule {
    fn drop(&mut self) {
        unsafe {
            LLVMDisposeModule(self.module);
            LLVMContextDispose(self.context);
        }
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no interior NUL")
}

unsafe fn take_message(message: *mut std::os::raw::c_char) -> String {
    if message.is_null() {
        return String::new();
    }
    let text = CStr::from_ptr(message).to_string_lossy().into_owned();
    LLVMDisposeMessage(message);
    text
}

/// Translates a module in the LLVM dialect to LLVM IR and adds `main`, which
/// hands the runtime `shape`, the model dimensions the code is compiled for.
pub fn translate(module: &Module, shape: &CompiledShape) -> Result<LlvmModule, CodegenError> {
    unsafe {
        let context = LLVMContextCreate();
        let raw = mlir_sys::mlirTranslateModuleToLLVMIR(
            module.as_operation().to_raw(),
            context as mlir_sys::LLVMContextRef,
        ) as LLVMModuleRef;
        if raw.is_null() {
            LLVMContextDispose(context);
            return Err(CodegenError::new(
                "the module could not be translated to LLVM IR",
            ));
        }
        let llvm = LlvmModule {
            context,
            module: raw,
        };
        add_main(&llvm, shape)?;
        Ok(llvm)
    }
}

/// `int main(int argc, char **argv)` calling
/// `ditto_rt_main(argc, argv, decode, prefill, lm_head, ditto_model_shape)`,
/// with `ditto_model_shape` a private constant `[7 x i64]` holding `shape`.
unsafe fn add_main(llvm: &LlvmModule, shape: &CompiledShape) -> Result<(), CodegenError> {
    let (context, module) = (llvm.context, llvm.module);
    let i32_type = LLVMInt32TypeInContext(context);
    let ptr_type = LLVMPointerTypeInContext(context, 0);
    let mut entries = Vec::new();
    for name in [
        "_mlir_ciface_ditto_decode",
        "_mlir_ciface_ditto_prefill",
        "_mlir_ciface_ditto_lm_head",
    ] {
        let function = LLVMGetNamedFunction(module, c(name).as_ptr());
        if function.is_null() {
            return Err(CodegenError::new(format!(
                "the module has no entry point `{}` (see docs/contracts.md §3)",
                name.trim_start_matches("_mlir_ciface_")
            )));
        }
        entries.push(function);
    }
    let i64_type = LLVMInt64TypeInContext(context);
    let mut dims: Vec<LLVMValueRef> = shape
        .iter()
        .map(|&d| LLVMConstInt(i64_type, d as u64, 1))
        .collect();
    let shape_type = LLVMArrayType2(i64_type, dims.len() as u64);
    let shape_global = LLVMAddGlobal(module, shape_type, c("ditto_model_shape").as_ptr());
    LLVMSetInitializer(
        shape_global,
        LLVMConstArray2(i64_type, dims.as_mut_ptr(), dims.len() as u64),
    );
    LLVMSetGlobalConstant(shape_global, 1);
    LLVMSetLinkage(shape_global, llvm_sys::LLVMLinkage::LLVMPrivateLinkage);
    let mut runtime_params = [i32_type, ptr_type, ptr_type, ptr_type, ptr_type, ptr_type];
    let runtime_type = LLVMFunctionType(i32_type, runtime_params.as_mut_ptr(), 6, 0);
    let runtime_main = LLVMAddFunction(module, c("ditto_rt_main").as_ptr(), runtime_type);
    let mut main_params = [i32_type, ptr_type];
    let main_type = LLVMFunctionType(i32_type, main_params.as_mut_ptr(), 2, 0);
    let main = LLVMAddFunction(module, c("main").as_ptr(), main_type);
    let builder = LLVMCreateBuilderInContext(context);
    let entry = LLVMAppendBasicBlockInContext(context, main, c("entry").as_ptr());
    LLVMPositionBuilderAtEnd(builder, entry);
    let mut args = [
        LLVMGetParam(main, 0),
        LLVMGetParam(main, 1),
        entries[0],
        entries[1],
        entries[2],
        shape_global,
    ];
    let status = LLVMBuildCall2(
        builder,
        runtime_type,
        runtime_main,
        args.as_mut_ptr(),
        6,
        c("status").as_ptr(),
    );
    LLVMBuildRet(builder, status);
    LLVMDisposeBuilder(builder);
    Ok(())
}

/// LLVM's fatal errors (e.g. a CPU without 64-bit support from an unknown
/// `--target-cpu`) end the process; say so in dittoc's words first.
extern "C" fn report_fatal(reason: *const std::os::raw::c_char) {
    // SAFETY: LLVM passes a NUL-terminated message.
    let reason = unsafe { CStr::from_ptr(reason) }.to_string_lossy();
    eprintln!("dittoc: error: LLVM cannot generate code: {reason} (check --target-cpu)");
    std::process::exit(1);
}

/// A target machine for the host triple and the requested CPU.
unsafe fn target_machine(target: &Target) -> Result<LLVMTargetMachineRef, CodegenError> {
    llvm_sys::error_handling::LLVMInstallFatalErrorHandler(Some(report_fatal));
    if LLVM_InitializeNativeTarget() != 0 || LLVM_InitializeNativeAsmPrinter() != 0 {
        return Err(CodegenError::new("LLVM has no native target"));
    }
    let triple = LLVMGetDefaultTargetTriple();
    let mut llvm_target = ptr::null_mut();
    let mut message = ptr::null_mut();
    if LLVMGetTargetFromTriple(triple, &mut llvm_target, &mut message) != 0 {
        let text = take_message(message);
        LLVMDisposeMessage(triple);
        return Err(CodegenError::new(format!("unknown target: {text}")));
    }
    let (cpu, features) = match &target.cpu {
        None => (
            take_message(LLVMGetHostCPUName()),
            take_message(LLVMGetHostCPUFeatures()),
        ),
        Some(cpu) => (cpu.clone(), String::new()),
    };
    let level = match target.opt_level {
        0 => LLVMCodeGenOptLevel::LLVMCodeGenLevelNone,
        1 => LLVMCodeGenOptLevel::LLVMCodeGenLevelLess,
        2 => LLVMCodeGenOptLevel::LLVMCodeGenLevelDefault,
        _ => LLVMCodeGenOptLevel::LLVMCodeGenLevelAggressive,
    };
    let machine = LLVMCreateTargetMachine(
        llvm_target,
        triple,
        c(&cpu).as_ptr(),
        c(&features).as_ptr(),
        level,
        LLVMRelocMode::LLVMRelocPIC,
        LLVMCodeModel::LLVMCodeModelDefault,
    );
    LLVMDisposeMessage(triple);
    if machine.is_null() {
        return Err(CodegenError::new(format!(
            "LLVM cannot generate code for CPU `{cpu}`"
        )));
    }
    Ok(machine)
}

/// Optimizes `llvm` at the target's level, then writes LLVM IR text
/// (`object = false`) or a native object file to `path`.
pub fn optimize_and_write(
    llvm: &LlvmModule,
    target: &Target,
    path: &Path,
    object: bool,
) -> Result<(), CodegenError> {
    unsafe {
        let machine = target_machine(target)?;
        let triple = LLVMGetTargetMachineTriple(machine);
        LLVMSetTarget(llvm.module, triple);
        LLVMDisposeMessage(triple);
        let layout = LLVMCreateTargetDataLayout(machine);
        LLVMSetModuleDataLayout(llvm.module, layout);
        llvm_sys::target::LLVMDisposeTargetData(layout);

        let passes = c(&format!("default<O{}>", target.opt_level.min(3)));
        let options = LLVMCreatePassBuilderOptions();
        let error = LLVMRunPasses(llvm.module, passes.as_ptr(), machine, options);
        LLVMDisposePassBuilderOptions(options);
        if !error.is_null() {
            let message = take_error(error);
            LLVMDisposeTargetMachine(machine);
            return Err(CodegenError::new(format!(
                "LLVM optimization failed: {message}"
            )));
        }

        let file = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())).map_err(
            |_| CodegenError::new(format!("{}: a path with a NUL byte", path.display())),
        )?;
        let mut message = ptr::null_mut();
        let failed = if object {
            LLVMTargetMachineEmitToFile(
                machine,
                llvm.module,
                file.as_ptr(),
                LLVMCodeGenFileType::LLVMObjectFile,
                &mut message,
            )
        } else {
            LLVMPrintModuleToFile(llvm.module, file.as_ptr(), &mut message)
        };
        LLVMDisposeTargetMachine(machine);
        if failed != 0 {
            return Err(CodegenError::new(format!(
                "{}: cannot write: {}",
                path.display(),
                take_message(message)
            )));
        }
        Ok(())
    }
}

unsafe fn take_error(error: llvm_sys::error::LLVMErrorRef) -> String {
    let message = LLVMGetErrorMessage(error);
    let text = CStr::from_ptr(message).to_string_lossy().into_owned();
    llvm_sys::error::LLVMDisposeErrorMessage(message);
    text
}
