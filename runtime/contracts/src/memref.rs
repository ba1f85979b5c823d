//! MLIR's ranked memref descriptor, as `llvm.emit_c_interface` passes it
//! (docs/contracts.md §3): the generated code and the runtime's kernel
//! adapters exchange every buffer as a pointer to one of these.

/// `struct { T* allocated; T* aligned; int64_t offset; int64_t sizes[N]; int64_t strides[N]; }`
#[repr(C)]
#[derive(Debug)]
pub struct MemRefDescriptor<T, const N: usize> {
    pub allocated: *mut T,
    pub aligned: *mut T,
    pub offset: i64,
    pub sizes: [i64; N],
    pub strides: [i64; N],
}

// The layout MLIR's LLVM lowering gives the descriptor on 64-bit targets:
// two pointers, then 1 + 2N int64 words, no padding.
const _: () = assert!(std::mem::size_of::<MemRefDescriptor<f32, 1>>() == 8 * 5);
const _: () = assert!(std::mem::size_of::<MemRefDescriptor<f32, 2>>() == 8 * 7);
const _: () = assert!(std::mem::size_of::<MemRefDescriptor<u8, 4>>() == 8 * 11);

impl<T, const N: usize> MemRefDescriptor<T, N> {
    /// A contiguous row-major view of `sizes` at `ptr`.
    pub fn contiguous(ptr: *mut T, sizes: [usize; N]) -> MemRefDescriptor<T, N> {
        let mut strides = [0i64; N];
        let mut stride = 1i64;
        for d in (0..N).rev() {
            strides[d] = stride;
            stride *= sizes[d] as i64;
        }
        MemRefDescriptor {
            allocated: ptr,
            aligned: ptr,
            offset: 0,
            sizes: sizes.map(|s| s as i64),
            strides,
        }
    }

    /// Address of element 0 of the view (`aligned + offset`).
    pub fn base(&self) -> *mut T {
        self.aligned.wrapping_offset(self.offset as isize)
    }
}
