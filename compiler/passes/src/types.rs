//! Memref types as the passes read them: element type and shape, through
//! MLIR's type API (never by parsing the printed type).

use ditto_ir::melior::ir::{
    r#type::{MemRefType, ShapedTypeLike},
    Type, TypeLike,
};

pub use ditto_contracts::kernel_abi::Element;

/// The element type of a type, if it is one of [`Element`]'s.
pub fn element_of(ty: Type) -> Option<Element> {
    let raw = ty.to_raw();
    // SAFETY: queries on a live type.
    unsafe {
        if mlir_sys::mlirTypeIsAF32(raw) {
            Some(Element::F32)
        } else if mlir_sys::mlirTypeIsAF16(raw) {
            Some(Element::F16)
        } else if mlir_sys::mlirTypeIsAInteger(raw)
            && mlir_sys::mlirIntegerTypeIsSignless(raw)
            && mlir_sys::mlirIntegerTypeGetWidth(raw) == 8
        {
            Some(Element::I8)
        } else {
            None
        }
    }
}

/// A ranked memref type's element type and shape (`None` for a dynamic
/// extent).
pub fn memref(ty: Type) -> Option<(Option<Element>, Vec<Option<u64>>)> {
    let memref = MemRefType::try_from(ty).ok()?;
    let shape = (0..memref.rank())
        .map(|i| match memref.dim_size(i).ok()? {
            ditto_ir::melior::ir::r#type::DimSize::Static(n) => Some(n),
            ditto_ir::melior::ir::r#type::DimSize::Dynamic => None,
        })
        .collect();
    Some((element_of(memref.element()), shape))
}

/// A memref type's shape if its element type is `element`.
pub fn typed_shape(ty: Type, element: Element) -> Option<Vec<Option<u64>>> {
    match memref(ty)? {
        (Some(e), shape) if e == element => Some(shape),
        _ => None,
    }
}

/// A memref type's shape if its elements are f32.
pub fn f32_shape(ty: Type) -> Option<Vec<Option<u64>>> {
    typed_shape(ty, Element::F32)
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
            typed_shape(ty("memref<40xi8>"), Element::I8),
            Some(vec![Some(40)])
        );
        assert_eq!(typed_shape(ty("memref<40xui8>"), Element::I8), None);
        assert_eq!(memref(ty("memref<3xi32>")), Some((None, vec![Some(3)])));
    }
}
