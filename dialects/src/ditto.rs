//! Typed builders for the `ditto` dialect (see `irdl/ditto.irdl.mlir`).

use melior::{
    ir::{
        attribute::{BoolAttribute, StringAttribute},
        operation::OperationBuilder,
        r#type::MemRefType,
        Attribute, Identifier, Location, Operation, Value,
    },
    Context,
};

pub use crate::Scale;

/// `%w = "ditto.weight"() {name = NAME} : () -> TYPE` — a tensor of the
/// model's weight file, by name.
pub fn weight<'c>(
    context: &'c Context,
    name: &str,
    r#type: MemRefType<'c>,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("ditto.weight", location)
        .add_attributes(&[(
            Identifier::new(context, "name"),
            StringAttribute::new(context, name).into(),
        )])
        .add_results(&[r#type.into()])
        .build()
        .expect("ditto.weight has a fixed, valid shape")
}

/// Which operands of a product are read transposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transpose {
    pub a: bool,
    pub b: bool,
}

/// `"ditto.gemv"(%a, %x, %y)`: y := beta·y + alpha·op(a)·x.
pub fn gemv<'c>(
    context: &'c Context,
    a: Value<'c, '_>,
    x: Value<'c, '_>,
    y: Value<'c, '_>,
    scale: Scale,
    transpose_a: bool,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("ditto.gemv", location)
        .add_operands(&[a, x, y])
        .add_attributes(&kernel_attributes(
            context,
            scale,
            &[("transpose_a", transpose_a)],
        ))
        .build()
        .expect("ditto.gemv has a fixed, valid shape")
}

/// `"ditto.gemm"(%a, %b, %c)`: c := beta·c + alpha·op(a)·op(b).
pub fn gemm<'c>(
    context: &'c Context,
    a: Value<'c, '_>,
    b: Value<'c, '_>,
    c: Value<'c, '_>,
    scale: Scale,
    transpose: Transpose,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("ditto.gemm", location)
        .add_operands(&[a, b, c])
        .add_attributes(&kernel_attributes(
            context,
            scale,
            &[("transpose_a", transpose.a), ("transpose_b", transpose.b)],
        ))
        .build()
        .expect("ditto.gemm has a fixed, valid shape")
}

/// `alpha`, `beta` (f32) and the named transposition flags.
fn kernel_attributes<'c>(
    context: &'c Context,
    scale: Scale,
    flags: &[(&str, bool)],
) -> Vec<(Identifier<'c>, Attribute<'c>)> {
    let mut attributes = crate::scale_attributes(context, scale).to_vec();
    for (name, value) in flags {
        attributes.push((
            Identifier::new(context, name),
            BoolAttribute::new(context, *value).into(),
        ));
    }
    attributes
}
