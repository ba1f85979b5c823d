//! The runtime entry points that the generated code calls (docs/contracts.md
//! §4): for each kernel op of the IR, the symbol `ditto-lower-kernels`
//! declares and calls, its memref operands and its scalar arguments in
//! order. The runtime's adapters are checked against the function types
//! below at compile time (`const _: GemvFn = _mlir_ciface_ditto_rt_gemv;`),
//! and the lowering builds its declarations from [`KERNELS`], so the two
//! sides cannot drift apart.
//!
//! Each callee `NAME` is declared with `llvm.emit_c_interface`, so the symbol
//! the runtime exports is [`CIFACE_PREFIX`]`NAME` and every memref operand
//! arrives as a pointer to a [`MemRefDescriptor`], cast first to a fully
//! dynamic strided memref of the operand's element type and rank.

use crate::memref::MemRefDescriptor;

/// What `llvm.emit_c_interface` puts before a function's name.
pub const CIFACE_PREFIX: &str = "_mlir_ciface_";

/// The element type of a memref operand (and of a weight in the blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    F32,
    F16,
    /// Signless 8-bit integers (packed codebook indices; `U8` in a weight
    /// file).
    I8,
}

impl Element {
    /// Its spelling in MLIR types.
    pub fn name(self) -> &'static str {
        match self {
            Element::F32 => "f32",
            Element::F16 => "f16",
            Element::I8 => "i8",
        }
    }

    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            Element::F32 => 4,
            Element::F16 => 2,
            Element::I8 => 1,
        }
    }
}

/// A memref operand: element type and rank; sizes, strides and offset are
/// dynamic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    pub element: Element,
    pub rank: usize,
}

/// An f32 matrix.
pub const MATRIX: Operand = Operand {
    element: Element::F32,
    rank: 2,
};
/// An f32 vector.
pub const VECTOR: Operand = Operand {
    element: Element::F32,
    rank: 1,
};
/// A codebook tensor's index bit stream.
pub const INDICES: Operand = Operand {
    element: Element::I8,
    rank: 1,
};
/// A codebook tensor's codebooks, `[blocks, 2^b]` f16.
pub const CODEBOOKS: Operand = Operand {
    element: Element::F16,
    rank: 2,
};

/// How an attribute of a kernel op is passed to the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// A float attribute, as f32.
    F32(&'static str),
    /// An integer attribute, as i64.
    I64(&'static str),
    /// A bool attribute, as i64 0 or 1.
    Flag(&'static str),
}

/// A kernel op, the runtime entry it calls, its memref operands (the op's
/// operands in order) and its attributes in the order the entry takes them
/// after the memrefs.
#[derive(Clone, Copy, Debug)]
pub struct KernelAbi {
    pub op: &'static str,
    pub callee: &'static str,
    pub memrefs: &'static [Operand],
    pub scalars: &'static [Scalar],
}

/// Every kernel of the IR.
pub const KERNELS: &[KernelAbi] = &[
    KernelAbi {
        op: "ditto.gemv",
        callee: "ditto_rt_gemv",
        memrefs: &[MATRIX, VECTOR, VECTOR],
        scalars: &[
            Scalar::F32("alpha"),
            Scalar::F32("beta"),
            Scalar::Flag("transpose_a"),
        ],
    },
    KernelAbi {
        op: "ditto.gemm",
        callee: "ditto_rt_gemm",
        memrefs: &[MATRIX, MATRIX, MATRIX],
        scalars: &[
            Scalar::F32("alpha"),
            Scalar::F32("beta"),
            Scalar::Flag("transpose_a"),
            Scalar::Flag("transpose_b"),
        ],
    },
    KernelAbi {
        op: "codebook.gemv",
        callee: "ditto_rt_cb_gemv",
        memrefs: &[INDICES, CODEBOOKS, VECTOR, VECTOR],
        scalars: &[
            Scalar::I64("bits"),
            Scalar::I64("block"),
            Scalar::F32("alpha"),
            Scalar::F32("beta"),
        ],
    },
    KernelAbi {
        op: "codebook.gemm",
        callee: "ditto_rt_cb_gemm",
        memrefs: &[INDICES, CODEBOOKS, MATRIX, MATRIX],
        scalars: &[
            Scalar::I64("bits"),
            Scalar::I64("block"),
            Scalar::F32("alpha"),
            Scalar::F32("beta"),
        ],
    },
    KernelAbi {
        op: "codebook.dequantize",
        callee: "ditto_rt_cb_dequantize",
        memrefs: &[INDICES, CODEBOOKS, MATRIX],
        scalars: &[Scalar::I64("bits"), Scalar::I64("block")],
    },
];

/// The kernel of op `op`, if it is one.
pub fn kernel(op: &str) -> Option<&'static KernelAbi> {
    KERNELS.iter().find(|k| k.op == op)
}

type F32Matrix = *const MemRefDescriptor<f32, 2>;
type F32Vector = *const MemRefDescriptor<f32, 1>;
type Indices = *const MemRefDescriptor<u8, 1>;
/// f16 codebook entries, passed as their bits.
type Codebooks = *const MemRefDescriptor<u16, 2>;

/// `ditto_rt_gemv(a, x, y, alpha, beta, transpose_a)`: y := beta·y + alpha·op(a)·x.
pub type GemvFn = unsafe extern "C" fn(F32Matrix, F32Vector, F32Vector, f32, f32, i64);
/// `ditto_rt_gemm(a, b, c, alpha, beta, transpose_a, transpose_b)`: c := beta·c + alpha·op(a)·op(b).
pub type GemmFn = unsafe extern "C" fn(F32Matrix, F32Matrix, F32Matrix, f32, f32, i64, i64);
/// `ditto_rt_cb_gemv(indices, codebooks, x, y, bits, block, alpha, beta)`: y := beta·y + alpha·Ŵ·x.
pub type CbGemvFn =
    unsafe extern "C" fn(Indices, Codebooks, F32Vector, F32Vector, i64, i64, f32, f32);
/// `ditto_rt_cb_gemm(indices, codebooks, x, c, bits, block, alpha, beta)`: C := beta·C + alpha·X·Ŵᵀ.
pub type CbGemmFn =
    unsafe extern "C" fn(Indices, Codebooks, F32Matrix, F32Matrix, i64, i64, f32, f32);
/// `ditto_rt_cb_dequantize(indices, codebooks, out, bits, block)`: out := Ŵ.
pub type CbDequantizeFn = unsafe extern "C" fn(Indices, Codebooks, F32Matrix, i64, i64);
