//! The kernel ABI contract from the runtime's side: every callee that the
//! lowering declares (ditto_contracts::kernel_abi::KERNELS) is exported by
//! this runtime, under its C-interface name. (The adapters' C types are
//! checked against the contract's at compile time, in kernel_abi.rs.)

use ditto_contracts::kernel_abi::KERNELS;

#[test]
fn every_declared_kernel_is_exported() {
    for kernel in KERNELS {
        assert!(
            ditto_rt::kernel_abi::exported(kernel.callee).is_some(),
            "{} ({}) has no runtime entry",
            kernel.callee,
            kernel.op
        );
    }
    assert!(ditto_rt::kernel_abi::exported("ditto_rt_nothing").is_none());
}
