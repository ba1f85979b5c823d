//! The kernels as the generated code calls them: MLIR's C interface, one
//! memref descriptor per operand (`llvm.emit_c_interface` on the declarations
//! that `ditto-lower-kernels` adds). Each adapter reads sizes and strides from
//! the descriptors and calls [`crate::kernels`]' BLIS-backed entry points.

use crate::{
    kernels::{ditto_rt_sgemm, ditto_rt_sgemv},
    model::MemRefDescriptor,
};

/// Address of element 0 of a view.
fn base<const N: usize>(view: &MemRefDescriptor<f32, N>) -> i64 {
    // SAFETY: the offset stays within the allocation the descriptor describes.
    unsafe { view.aligned.offset(view.offset as isize) as i64 }
}

/// y := beta·y + alpha·op(a)·x, op(a) = a or aᵀ.
///
/// # Safety
/// The descriptors describe live f32 buffers of consistent shapes.
#[no_mangle]
pub unsafe extern "C" fn _mlir_ciface_ditto_rt_gemv(
    a: *const MemRefDescriptor<f32, 2>,
    x: *const MemRefDescriptor<f32, 1>,
    y: *const MemRefDescriptor<f32, 1>,
    alpha: f32,
    beta: f32,
    transpose_a: i64,
) {
    let (a, x, y) = (&*a, &*x, &*y);
    let (mut m, mut n) = (a.sizes[0], a.sizes[1]);
    let (mut rsa, mut csa) = (a.strides[0], a.strides[1]);
    if transpose_a != 0 {
        std::mem::swap(&mut m, &mut n);
        std::mem::swap(&mut rsa, &mut csa);
    }
    ditto_rt_sgemv(
        m,
        n,
        alpha,
        base(a),
        rsa,
        csa,
        base(x),
        x.strides[0],
        beta,
        base(y),
        y.strides[0],
    )
}

/// c := beta·c + alpha·op(a)·op(b).
///
/// # Safety
/// The descriptors describe live f32 buffers of consistent shapes.
#[no_mangle]
pub unsafe extern "C" fn _mlir_ciface_ditto_rt_gemm(
    a: *const MemRefDescriptor<f32, 2>,
    b: *const MemRefDescriptor<f32, 2>,
    c: *const MemRefDescriptor<f32, 2>,
    alpha: f32,
    beta: f32,
    transpose_a: i64,
    transpose_b: i64,
) {
    let (a, b, c) = (&*a, &*b, &*c);
    let op = |view: &MemRefDescriptor<f32, 2>, transpose: i64| {
        if transpose != 0 {
            (
                view.sizes[1],
                view.sizes[0],
                view.strides[1],
                view.strides[0],
            )
        } else {
            (
                view.sizes[0],
                view.sizes[1],
                view.strides[0],
                view.strides[1],
            )
        }
    };
    let (m, k, rsa, csa) = op(a, transpose_a);
    let (_, n, rsb, csb) = op(b, transpose_b);
    // C = X·Wᵀ with W a weight of the payload: what --calibrate records.
    if transpose_a == 0 && transpose_b != 0 && csa == 1 {
        crate::calibrate::observe(
            base(b) as *const f32,
            base(a) as *const f32,
            m as usize,
            k as usize,
            rsa as usize,
        );
    }
    ditto_rt_sgemm(
        m,
        n,
        k,
        alpha,
        base(a),
        rsa,
        csa,
        base(b),
        rsb,
        csb,
        beta,
        base(c),
        c.strides[0],
        c.strides[1],
    )
}

// The adapters have exactly the types of the kernel ABI contract
// (ditto_contracts::kernel_abi), which the lowering declares them with.
const _: ditto_contracts::kernel_abi::GemvFn = _mlir_ciface_ditto_rt_gemv;
const _: ditto_contracts::kernel_abi::GemmFn = _mlir_ciface_ditto_rt_gemm;
const _: ditto_contracts::kernel_abi::CbGemvFn =
    crate::codebook::abi::_mlir_ciface_ditto_rt_cb_gemv;
const _: ditto_contracts::kernel_abi::CbGemmFn =
    crate::codebook::abi::_mlir_ciface_ditto_rt_cb_gemm;
const _: ditto_contracts::kernel_abi::CbDequantizeFn =
    crate::codebook::abi::_mlir_ciface_ditto_rt_cb_dequantize;

/// The exported entry of each callee of the contract's kernel table, by
/// its name (`ditto_rt_gemv`): what the generated code links against.
pub fn exported(callee: &str) -> Option<*const ()> {
    Some(match callee {
        "ditto_rt_gemv" => _mlir_ciface_ditto_rt_gemv as *const (),
        "ditto_rt_gemm" => _mlir_ciface_ditto_rt_gemm as *const (),
        "ditto_rt_cb_gemv" => crate::codebook::abi::_mlir_ciface_ditto_rt_cb_gemv as *const (),
        "ditto_rt_cb_gemm" => crate::codebook::abi::_mlir_ciface_ditto_rt_cb_gemm as *const (),
        "ditto_rt_cb_dequantize" => {
            crate::codebook::abi::_mlir_ciface_ditto_rt_cb_dequantize as *const ()
        }
        _ => return None,
    })
}
