//! The codebook kernels as the generated code calls them: MLIR's C
//! interface, one memref descriptor per array (as `kernel_abi.rs` does for
//! the BLIS kernels).
//!
//! ```c
//! void _mlir_ciface_ditto_rt_cb_gemv(MemRef<uint8_t,1>* indices, MemRef<uint16_t /*f16*/,2>* codebooks,
//!                                    MemRef<float,1>* x, MemRef<float,1>* y,
//!                                    int64_t bits, int64_t block, float alpha, float beta);
//!     // N = y.sizes[0], K = x.sizes[0]
//! void _mlir_ciface_ditto_rt_cb_gemm(MemRef<uint8_t,1>* indices, MemRef<uint16_t,2>* codebooks,
//!                                    MemRef<float,2>* x, MemRef<float,2>* c,
//!                                    int64_t bits, int64_t block, float alpha, float beta);
//!     // M = c.sizes[0], N = c.sizes[1], K = x.sizes[1]
//! void _mlir_ciface_ditto_rt_cb_dequantize(MemRef<uint8_t,1>* indices, MemRef<uint16_t,2>* codebooks,
//!                                          MemRef<float,2>* out, int64_t bits, int64_t block);
//!     // [N, K] = out.sizes
//! ```
//!
//! `ditto_rt_cb_gemv` and `ditto_rt_cb_gemm` compute with int8 activations
//! where the CPU and the matrix allow it, unless the executable runs with
//! `--activations f32` ([`super::cb_gemv`], [`super::cb_gemm`]); dequantize
//! is f32.
//!
//! `indices` must be contiguous and `codebooks` a contiguous
//! `[ceil(N·K/B), 2^b]` array (both are constants the compiler lays out).
//! Vectors may be strided views: they are copied to contiguous scratch when
//! their stride is not 1. Matrices are used in place when their rows are
//! contiguous (column stride 1) and, for C, do not overlap; otherwise they
//! go through scratch too. Sizes that do not fit the format are a compiler
//! bug: the process stops with a message naming the kernel and the problem.

use super::GemmRows;
use std::borrow::Cow;

use half::f16;

use super::{cb_dequantize, cb_gemm, cb_gemv, CbMatrix};
use crate::model::MemRefDescriptor;
use crate::pool::pool;

/// Stops the process: the generated code broke the kernel's contract.
fn fail(kernel: &str, problem: &str) -> ! {
    eprintln!("ditto-rt: {kernel}: {problem} (this is a bug in the compiler that produced this executable)");
    std::process::abort()
}

/// Address of element 0 of a view.
fn base<T, const N: usize>(view: &MemRefDescriptor<T, N>) -> *mut T {
    view.aligned.wrapping_offset(view.offset as isize)
}

/// A size as usize, or the process stops.
fn size(kernel: &str, what: &str, v: i64) -> usize {
    usize::try_from(v).unwrap_or_else(|_| fail(kernel, &format!("negative {what} {v}")))
}

/// `len` elements at `ptr` (no pointer is needed for none).
///
/// # Safety
/// `ptr` addresses `len` live elements.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// The quantized matrix Ŵ [n, k] behind the two descriptors.
///
/// # Safety
/// The descriptors describe live buffers.
unsafe fn matrix<'a>(
    kernel: &str,
    (n, k): (usize, usize),
    indices: &MemRefDescriptor<u8, 1>,
    codebooks: &MemRefDescriptor<u16, 2>,
    bits: i64,
    block: i64,
) -> CbMatrix<'a> {
    let bytes = size(kernel, "index size", indices.sizes[0]);
    if bytes > 1 && indices.strides[0] != 1 {
        fail(
            kernel,
            &format!("the index stream has stride {}, not 1", indices.strides[0]),
        );
    }
    let (blocks, levels) = (
        size(kernel, "codebook count", codebooks.sizes[0]),
        size(kernel, "codebook size", codebooks.sizes[1]),
    );
    let contiguous = (blocks <= 1 || codebooks.strides[0] == levels as i64)
        && (levels <= 1 || codebooks.strides[1] == 1);
    if !contiguous {
        fail(
            kernel,
            &format!(
                "codebooks [{blocks}, {levels}] have strides {:?}, not a contiguous array",
                codebooks.strides
            ),
        );
    }
    let (bits, block) = (size(kernel, "bits", bits), size(kernel, "block", block));
    if bits < usize::BITS as usize && levels != 1 << bits {
        fail(
            kernel,
            &format!(
                "codebooks have {levels} entries each, {bits}-bit indices need {}",
                1u64 << bits
            ),
        );
    }
    let indices = slice(base(indices) as *const u8, bytes);
    let codebooks = slice(base(codebooks) as *const f16, blocks * levels); // f16 is a u16
    CbMatrix::new(n, k, bits, block, indices, codebooks)
        .unwrap_or_else(|e| fail(kernel, &e.to_string()))
}

/// A vector view as a contiguous slice (copied when strided).
///
/// # Safety
/// The descriptor describes a live buffer.
unsafe fn vector<'a>(v: &MemRefDescriptor<f32, 1>, len: usize) -> Cow<'a, [f32]> {
    let (p, stride) = (base(v) as *const f32, v.strides[0] as isize);
    if stride == 1 || len <= 1 {
        Cow::Borrowed(slice(p, len))
    } else {
        Cow::Owned(
            (0..len)
                .map(|i| *p.wrapping_offset(i as isize * stride))
                .collect(),
        )
    }
}

/// y := beta·y + alpha·Ŵ·x.
///
/// # Safety
/// The descriptors describe live buffers; y does not overlap the others.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C ABI of contracts.md §4
pub unsafe extern "C" fn _mlir_ciface_ditto_rt_cb_gemv(
    indices: *const MemRefDescriptor<u8, 1>,
    codebooks: *const MemRefDescriptor<u16, 2>,
    x: *const MemRefDescriptor<f32, 1>,
    y: *const MemRefDescriptor<f32, 1>,
    bits: i64,
    block: i64,
    alpha: f32,
    beta: f32,
) {
    const KERNEL: &str = "ditto_rt_cb_gemv";
    let (x, y) = (&*x, &*y);
    let n = size(KERNEL, "N (y size)", y.sizes[0]);
    let k = size(KERNEL, "K (x size)", x.sizes[0]);
    let w = matrix(KERNEL, (n, k), &*indices, &*codebooks, bits, block);
    let x = vector(x, k);
    let (p, stride) = (base(y), y.strides[0] as isize);
    if stride == 1 || n <= 1 {
        let y = if n == 0 {
            &mut []
        } else {
            std::slice::from_raw_parts_mut(p, n)
        };
        cb_gemv(pool(), &w, &x, y, alpha, beta);
    } else {
        let mut scratch = vector(y, n).into_owned();
        cb_gemv(pool(), &w, &x, &mut scratch, alpha, beta);
        for (i, v) in scratch.into_iter().enumerate() {
            *p.wrapping_offset(i as isize * stride) = v;
        }
    }
}

/// A 2-D view's (rows, cols, row stride) when its rows are contiguous.
fn rows_in_place(m: &MemRefDescriptor<f32, 2>, rows: usize, cols: usize) -> Option<usize> {
    let (rs, cs) = (m.strides[0], m.strides[1]);
    let unit_cols = cs == 1 || cols <= 1;
    let ld = if rows <= 1 {
        cols
    } else {
        usize::try_from(rs).ok()?
    };
    (unit_cols && ld >= cols).then_some(ld)
}

/// Element (r, c) of a 2-D view.
fn at(m: &MemRefDescriptor<f32, 2>, r: usize, c: usize) -> *mut f32 {
    base(m).wrapping_offset(r as isize * m.strides[0] as isize + c as isize * m.strides[1] as isize)
}

/// A 2-D view copied into a contiguous [rows, cols] array.
///
/// # Safety
/// The descriptor describes a live buffer.
unsafe fn gather(m: &MemRefDescriptor<f32, 2>, rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| *at(m, i / cols, i % cols))
        .collect()
}

/// C := beta·C + alpha·X·Ŵᵀ.
///
/// # Safety
/// The descriptors describe live buffers; C does not overlap the others.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C ABI of contracts.md §4
pub unsafe extern "C" fn _mlir_ciface_ditto_rt_cb_gemm(
    indices: *const MemRefDescriptor<u8, 1>,
    codebooks: *const MemRefDescriptor<u16, 2>,
    x: *const MemRefDescriptor<f32, 2>,
    c: *const MemRefDescriptor<f32, 2>,
    bits: i64,
    block: i64,
    alpha: f32,
    beta: f32,
) {
    const KERNEL: &str = "ditto_rt_cb_gemm";
    let (x, c) = (&*x, &*c);
    let m = size(KERNEL, "M (C rows)", c.sizes[0]);
    let n = size(KERNEL, "N (C columns)", c.sizes[1]);
    let k = size(KERNEL, "K (X columns)", x.sizes[1]);
    if size(KERNEL, "X rows", x.sizes[0]) != m {
        fail(KERNEL, &format!("X has {} rows, C has {m}", x.sizes[0]));
    }
    let w = matrix(KERNEL, (n, k), &*indices, &*codebooks, bits, block);
    if m == 0 || n == 0 {
        return;
    }
    let (xs, ldx): (Cow<[f32]>, usize) = match rows_in_place(x, m, k) {
        Some(ldx) => (Cow::Borrowed(slice(base(x), (m - 1) * ldx + k)), ldx),
        None => (Cow::Owned(gather(x, m, k)), k),
    };
    match rows_in_place(c, m, n) {
        Some(ldc) => {
            let cs = std::slice::from_raw_parts_mut(base(c), (m - 1) * ldc + n);
            cb_gemm(
                pool(),
                &w,
                GemmRows {
                    m,
                    x: &xs,
                    ldx,
                    c: cs,
                    ldc,
                    alpha,
                    beta,
                },
            )
        }
        None => {
            let mut scratch = gather(c, m, n);
            cb_gemm(
                pool(),
                &w,
                GemmRows {
                    m,
                    x: &xs,
                    ldx,
                    c: &mut scratch,
                    ldc: n,
                    alpha,
                    beta,
                },
            );
            for (i, v) in scratch.into_iter().enumerate() {
                *at(c, i / n, i % n) = v;
            }
        }
    }
}

/// out := Ŵ.
///
/// # Safety
/// The descriptors describe live buffers; out does not overlap the others.
#[no_mangle]
pub unsafe extern "C" fn _mlir_ciface_ditto_rt_cb_dequantize(
    indices: *const MemRefDescriptor<u8, 1>,
    codebooks: *const MemRefDescriptor<u16, 2>,
    out: *const MemRefDescriptor<f32, 2>,
    bits: i64,
    block: i64,
) {
    const KERNEL: &str = "ditto_rt_cb_dequantize";
    let out = &*out;
    let n = size(KERNEL, "N (out rows)", out.sizes[0]);
    let k = size(KERNEL, "K (out columns)", out.sizes[1]);
    let w = matrix(KERNEL, (n, k), &*indices, &*codebooks, bits, block);
    if n == 0 || k == 0 {
        return;
    }
    if rows_in_place(out, n, k) == Some(k) {
        cb_dequantize(pool(), &w, std::slice::from_raw_parts_mut(base(out), n * k));
    } else {
        let mut scratch = vec![0.0f32; n * k];
        cb_dequantize(pool(), &w, &mut scratch);
        for (i, v) in scratch.into_iter().enumerate() {
            *at(out, i / k, i % k) = v;
        }
    }
}
