//! Memref types as the passes read them: element type and shape, through
//! MLIR's type API (never by parsing the printed type).

use ditto_ir::melior::ir::{
    r#type::{MemRefType, ShapedTypeLike},
    Type, TypeLike,
};

/// The element types dittoc's ops and weights use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    F32,
    F16,
    /// Signless 8-bit integers (packed codebook indices).
    I8,
}

impl ElementType {
    /// The element type of a type, if it is one of these.
    pub fn of(ty: Type) -> Option<Self> {
        let raw = ty.to_raw();
        // SAFETY: queries on a live type.
        unsafe {
            if mlir_sys::mlirTypeIsAF32(raw) {
                Some(ElementType::F32)
            } else if mlir_sys::mlirTypeIsAF16(raw) {
                Some(ElementType::F16)
            } else if mlir_sys::mlirTypeIsAInteger(raw)
                && mlir_sys::mlirIntegerTypeIsSignless(raw)
                && mlir_sys::mlirIntegerTypeGetWidth(raw) == 8
            {
                Some(ElementType::I8)
            } else {
                None
            }
        }
    }

    /// Its name in MLIR's syntax, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::I8 => "i8",
        }
    }
}

/// A ranked memref type's element type and shape (`None` for a dynamic
/// extent).
pub fn memref(ty: Type) -> Option<(Option<ElementType>, Vec<Option<u64>>)> {
    let memref = MemRefType::try_from(ty).ok()?;
    let shape = (0..memref.rank())
        .map(|i| match memref.dim_size(i).ok()? {
            ditto_ir::melior::ir::r#type::DimSize::Static(n) => Some(n),
            ditto_ir::melior::ir::r#type::DimSize::Dynamic => None,
        })
        .collect();
    Some((ElementType::of(memref.element()), shape))
}

/// A memref type's shape if its element type is `element`.
pub fn typed_shape(ty: Type, element: ElementType) -> Option<Vec<Option<u64>>> {
    match memref(ty)? {
        (Some(e), shape) if e == element => Some(shape),
        _ => None,
    }
}

/// A memref type's shape if its elements are f32.
pub fn f32_shape(ty: Type) -> Option<Vec<Option<u64>>> {
    typed_shape(ty, ElementType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_memref_types() {
        let context = ditto_ir::create_context().unwrap();
        let ty = |text: &str| Type::parse(&context, text).unwrap();
        assert_eq!(
            f32_shape(ty("memref<4x8xf32>")),
            Some(vec![Some(4), Some(8)])
        );
        assert_eq!(
            f32_shape(ty("memref<?x8xf32, strided<[8, 1], offset: ?>>")),
            Some(vec![None, Some(8)])
        );
        assert_eq!(f32_shape(ty("memref<4xf16>")), None);
        assert_eq!(f32_shape(ty("memref<f32>")), Some(vec![]));
        assert_eq!(f32_shape(ty("memref<*xf32>")), None, "unranked");
        assert_eq!(f32_shape(ty("tensor<4xf32>")), None);
        assert_eq!(
            typed_shape(ty("memref<40xi8>"), ElementType::I8),
            Some(vec![Some(40)])
        );
        assert_eq!(typed_shape(ty("memref<40xui8>"), ElementType::I8), None);
        assert_eq!(memref(ty("memref<3xi32>")), Some((None, vec![Some(3)])));
    }
}
