//! Typed builders for the `ditto` dialect (see `irdl/ditto.irdl.mlir`).

use melior::{
    ir::{
        attribute::{BoolAttribute, FloatAttribute, StringAttribute},
        operation::OperationBuilder,
        r#type::MemRefType,
        Identifier, Location, Operation, Type, Value,
    },
    Context,
};

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

/// `"ditto.gemv"(%a, %x, %y)`: y := beta·y + alpha·op(a)·x.
#[allow(clippy::too_many_arguments)]
pub fn gemv<'c>(
    context: &'c Context,
    a: Value<'c, '_>,
    x: Value<'c, '_>,
    y: Value<'c, '_>,
    alpha: f32,
    beta: f32,
    transpose_a: bool,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("ditto.gemv", location)
        .add_operands(&[a, x, y])
        .add_attributes(&[
            (
                Identifier::new(context, "alpha"),
                f32_attribute(context, alpha),
            ),
            (
                Identifier::new(context, "beta"),
                f32_attribute(context, beta),
            ),
            (
                Identifier::new(context, "transpose_a"),
                BoolAttribute::new(context, transpose_a).into(),
            ),
        ])
        .build()
        .expect("ditto.gemv has a fixed, valid shape")
}

/// `"ditto.gemm"(%a, %b, %c)`: c := beta·c + alpha·op(a)·op(b).
#[allow(clippy::too_many_arguments)]
pub fn gemm<'c>(
    context: &'c Context,
    a: Value<'c, '_>,
    b: Value<'c, '_>,
    c: Value<'c, '_>,
    alpha: f32,
    beta: f32,
    transpose_a: bool,
    transpose_b: bool,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("ditto.gemm", location)
        .add_operands(&[a, b, c])
        .add_attributes(&[
            (
                Identifier::new(context, "alpha"),
                f32_attribute(context, alpha),
            ),
            (
                Identifier::new(context, "beta"),
                f32_attribute(context, beta),
            ),
            (
                Identifier::new(context, "transpose_a"),
                BoolAttribute::new(context, transpose_a).into(),
            ),
            (
                Identifier::new(context, "transpose_b"),
                BoolAttribute::new(context, transpose_b).into(),
            ),
        ])
        .build()
        .expect("ditto.gemm has a fixed, valid shape")
}

fn f32_attribute(context: &Context, value: f32) -> melior::ir::Attribute<'_> {
    FloatAttribute::new(context, Type::float32(context), value as f64).into()
}
