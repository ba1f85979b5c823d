//! Typed builders for the `codebook` dialect (see `irdl/codebook.irdl.mlir`
//! and docs/codebook-format.md).

use melior::{
    ir::{
        attribute::{IntegerAttribute, StringAttribute},
        operation::OperationBuilder,
        r#type::MemRefType,
        Attribute, Identifier, Location, Operation, Type, Value,
    },
    Context,
};

pub use crate::Scale;

/// How a tensor is quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// Bits per index, one of 2, 3, 4, 5, 6, 8.
    pub bits: u8,
    /// Weights per codebook (row-major over the whole tensor).
    pub block: u64,
}

fn scheme_attributes(context: &Context, scheme: Scheme) -> [(Identifier<'_>, Attribute<'_>); 2] {
    let i64_type = Type::parse(context, "i64").expect("i64 parses");
    [
        (
            Identifier::new(context, "bits"),
            IntegerAttribute::new(i64_type, scheme.bits as i64).into(),
        ),
        (
            Identifier::new(context, "block"),
            IntegerAttribute::new(i64_type, scheme.block as i64).into(),
        ),
    ]
}

/// `%indices, %codebooks = "codebook.weight"() {name, bits, block}`.
pub fn weight<'c>(
    context: &'c Context,
    name: &str,
    scheme: Scheme,
    indices: MemRefType<'c>,
    codebooks: MemRefType<'c>,
    location: Location<'c>,
) -> Operation<'c> {
    let mut attributes = vec![(
        Identifier::new(context, "name"),
        StringAttribute::new(context, name).into(),
    )];
    attributes.extend(scheme_attributes(context, scheme));
    OperationBuilder::new("codebook.weight", location)
        .add_attributes(&attributes)
        .add_results(&[indices.into(), codebooks.into()])
        .build()
        .expect("codebook.weight has a fixed, valid shape")
}

/// `"codebook.dequantize"(%indices, %codebooks, %out) {bits, block}`.
pub fn dequantize<'c>(
    context: &'c Context,
    indices: Value<'c, '_>,
    codebooks: Value<'c, '_>,
    out: Value<'c, '_>,
    scheme: Scheme,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("codebook.dequantize", location)
        .add_operands(&[indices, codebooks, out])
        .add_attributes(&scheme_attributes(context, scheme))
        .build()
        .expect("codebook.dequantize has a fixed, valid shape")
}

/// `%v = "codebook.load"(%indices, %codebooks, %i) {bits, block} : ... -> f32`:
/// the weight at row-major position `i` of the dequantized tensor.
pub fn load<'c>(
    context: &'c Context,
    indices: Value<'c, '_>,
    codebooks: Value<'c, '_>,
    i: Value<'c, '_>,
    scheme: Scheme,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("codebook.load", location)
        .add_operands(&[indices, codebooks, i])
        .add_attributes(&scheme_attributes(context, scheme))
        .add_results(&[Type::float32(context)])
        .build()
        .expect("codebook.load has a fixed, valid shape")
}

/// A codebook weight as the kernels take it: its index stream and
/// codebooks (the two results of `codebook.weight`) and its scheme.
#[derive(Clone, Copy)]
pub struct Weight<'c, 'a> {
    pub indices: Value<'c, 'a>,
    pub codebooks: Value<'c, 'a>,
    pub scheme: Scheme,
}

/// `"codebook.gemv"(%indices, %codebooks, %x, %y)`: y := beta·y + alpha·Ŵ·x.
pub fn gemv<'c>(
    context: &'c Context,
    weight: Weight<'c, '_>,
    x: Value<'c, '_>,
    y: Value<'c, '_>,
    scale: Scale,
    location: Location<'c>,
) -> Operation<'c> {
    kernel(
        context,
        "codebook.gemv",
        [weight.indices, weight.codebooks, x, y],
        weight.scheme,
        scale,
        location,
    )
}

/// `"codebook.gemm"(%indices, %codebooks, %x, %c)`: c := beta·c + alpha·X·Ŵᵀ.
pub fn gemm<'c>(
    context: &'c Context,
    weight: Weight<'c, '_>,
    x: Value<'c, '_>,
    c: Value<'c, '_>,
    scale: Scale,
    location: Location<'c>,
) -> Operation<'c> {
    kernel(
        context,
        "codebook.gemm",
        [weight.indices, weight.codebooks, x, c],
        weight.scheme,
        scale,
        location,
    )
}

fn kernel<'c>(
    context: &'c Context,
    name: &str,
    operands: [Value<'c, '_>; 4],
    scheme: Scheme,
    scale: Scale,
    location: Location<'c>,
) -> Operation<'c> {
    let mut attributes = scheme_attributes(context, scheme).to_vec();
    attributes.extend(crate::scale_attributes(context, scale));
    OperationBuilder::new(name, location)
        .add_operands(&operands)
        .add_attributes(&attributes)
        .build()
        .expect("codebook kernels have a fixed, valid shape")
}
