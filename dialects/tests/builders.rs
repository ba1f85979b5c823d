//! Each builder's op verifies against the IRDL definition and prints as
//! snapshotted.

use ditto_dialects::{
    ditto::{self, Transpose},
    Scale,
};
use melior::{
    dialect::{func, DialectRegistry},
    ir::{
        attribute::{StringAttribute, TypeAttribute},
        block::BlockLike,
        operation::OperationLike,
        r#type::{FunctionType, MemRefType},
        Block, Location, Module, Region, RegionLike, Type,
    },
    utility::register_all_dialects,
    Context,
};

fn context() -> Context {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    ditto_dialects::load(&context).expect("dialects load");
    context
}

fn memref<'c>(context: &'c Context, shape: &[i64]) -> MemRefType<'c> {
    MemRefType::new(Type::float32(context), shape, None, None)
}

/// Builds `func.func @test(args)` whose body `body` fills, and returns the
/// verified module's text.
fn build(context: &Context, args: &[MemRefType], body: impl for<'a> Fn(&'a Block<'_>)) -> String {
    let location = Location::unknown(context);
    let module = Module::new(location);
    let arg_types: Vec<Type> = args.iter().map(|t| (*t).into()).collect();
    let block = Block::new(&arg_types.iter().map(|t| (*t, location)).collect::<Vec<_>>());
    body(&block);
    block.append_operation(func::r#return(&[], location));
    let region = Region::new();
    region.append_block(block);
    module.body().append_operation(func::func(
        context,
        StringAttribute::new(context, "test"),
        TypeAttribute::new(FunctionType::new(context, &arg_types, &[]).into()),
        region,
        &[],
        location,
    ));
    assert!(module.as_operation().verify());
    module.as_operation().to_string()
}

#[test]
fn weight() {
    let context = context();
    let text = build(&context, &[], |block| {
        block.append_operation(ditto::weight(
            &context,
            "blk.0.attn_q.weight",
            memref(&context, &[8, 4]),
            Location::unknown(&context),
        ));
    });
    insta::assert_snapshot!(text);
}

#[test]
fn gemv() {
    let context = context();
    let args = [
        memref(&context, &[8, 4]),
        memref(&context, &[4]),
        memref(&context, &[8]),
    ];
    let text = build(&context, &args, |block| {
        let arg = |i| block.argument(i).unwrap().into();
        block.append_operation(ditto::gemv(
            &context,
            arg(0),
            arg(1),
            arg(2),
            Scale {
                alpha: 1.0,
                beta: 0.0,
            },
            false,
            Location::unknown(&context),
        ));
    });
    insta::assert_snapshot!(text);
}

#[test]
fn gemm() {
    let context = context();
    let args = [
        memref(&context, &[3, 4]),
        memref(&context, &[8, 4]),
        memref(&context, &[3, 8]),
    ];
    let text = build(&context, &args, |block| {
        let arg = |i| block.argument(i).unwrap().into();
        block.append_operation(ditto::gemm(
            &context,
            arg(0),
            arg(1),
            arg(2),
            Scale {
                alpha: 0.5,
                beta: 1.0,
            },
            Transpose { a: false, b: true },
            Location::unknown(&context),
        ));
    });
    insta::assert_snapshot!(text);
}

#[test]
fn invalid_attribute_is_rejected_at_parse() {
    let context = context();
    let module = Module::parse(
        &context,
        r#"func.func @f() {
             %w = "ditto.weight"() {name = 3 : i64} : () -> memref<2xf32>
             return
           }"#,
    );
    assert!(module.is_none(), "a non-string weight name must not verify");
}

fn typed<'c>(context: &'c Context, text: &str) -> MemRefType<'c> {
    MemRefType::try_from(Type::parse(context, text).expect("type parses")).expect("a memref")
}

#[test]
fn codebook_weight_and_dequantize() {
    use ditto_dialects::codebook::{self, Scheme};
    let context = context();
    let scheme = Scheme {
        bits: 4,
        block: 256,
    };
    let text = build(&context, &[memref(&context, &[32, 64])], |block| {
        let location = Location::unknown(&context);
        let weight = block.append_operation(codebook::weight(
            &context,
            "w",
            scheme,
            typed(&context, "memref<1024xi8>"),
            typed(&context, "memref<8x16xf16>"),
            location,
        ));
        block.append_operation(codebook::dequantize(
            &context,
            weight.result(0).unwrap().into(),
            weight.result(1).unwrap().into(),
            block.argument(0).unwrap().into(),
            scheme,
            location,
        ));
    });
    insta::assert_snapshot!(text);
}

#[test]
fn codebook_load() {
    use ditto_dialects::codebook::{self, Scheme};
    use melior::{dialect::arith, ir::attribute::IntegerAttribute};
    let context = context();
    let scheme = Scheme { bits: 5, block: 64 };
    let text = build(&context, &[], |block| {
        let location = Location::unknown(&context);
        let weight = block.append_operation(codebook::weight(
            &context,
            "token_embd.weight",
            scheme,
            typed(&context, "memref<80xi8>"),
            typed(&context, "memref<2x32xf16>"),
            location,
        ));
        let i = block.append_operation(arith::constant(
            &context,
            IntegerAttribute::new(Type::index(&context), 70).into(),
            location,
        ));
        block.append_operation(codebook::load(
            &context,
            weight.result(0).unwrap().into(),
            weight.result(1).unwrap().into(),
            i.result(0).unwrap().into(),
            scheme,
            location,
        ));
    });
    insta::assert_snapshot!(text);
}

#[test]
fn codebook_gemv_and_gemm() {
    use ditto_dialects::codebook::{self, Scheme};
    let context = context();
    let scheme = Scheme {
        bits: 3,
        block: 512,
    };
    let args = [
        typed(&context, "memref<768xi8>"),
        typed(&context, "memref<4x8xf16>"),
        memref(&context, &[64]),
        memref(&context, &[32]),
        typed(&context, "memref<?x64xf32>"),
        typed(&context, "memref<?x32xf32>"),
    ];
    let text = build(&context, &args, |block| {
        let location = Location::unknown(&context);
        let arg = |i| block.argument(i).unwrap().into();
        let weight = codebook::Weight {
            indices: arg(0),
            codebooks: arg(1),
            scheme,
        };
        block.append_operation(codebook::gemv(
            &context,
            weight,
            arg(2),
            arg(3),
            Scale {
                alpha: 1.0,
                beta: 0.0,
            },
            location,
        ));
        block.append_operation(codebook::gemm(
            &context,
            weight,
            arg(4),
            arg(5),
            Scale {
                alpha: 1.0,
                beta: 1.0,
            },
            location,
        ));
    });
    insta::assert_snapshot!(text);
}
