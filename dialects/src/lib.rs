//! The project's MLIR dialects.
//!
//! Each dialect is defined in IRDL under `dialects/irdl/` and loaded into a
//! context at run time with [`load`]; its ops then parse, verify and print in
//! generic form. Every op has one typed builder function here.

use melior::{
    ir::{Location, Module},
    utility::load_irdl_dialects,
    Context,
};

pub mod codebook;
pub mod ditto;

/// Each project dialect: its IRDL file, its source, and one of its ops, which
/// tells whether the dialect is loaded already.
const DIALECTS: [(&str, &str, &str); 2] = [
    (
        "dialects/irdl/ditto.irdl.mlir",
        include_str!("../irdl/ditto.irdl.mlir"),
        "ditto.weight",
    ),
    (
        "dialects/irdl/codebook.irdl.mlir",
        include_str!("../irdl/codebook.irdl.mlir"),
        "codebook.weight",
    ),
];

/// The IRDL definitions of every project dialect, as one MLIR source (for
/// tools that load IRDL from a file, such as `mlir-opt`'s `--irdl-file`).
pub fn irdl_source() -> String {
    DIALECTS
        .iter()
        .map(|(_, source, _)| *source)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads every project dialect into `context` (which must have the upstream
/// `irdl` dialect loaded). Loading twice is a no-op.
pub fn load(context: &Context) -> Result<(), Vec<String>> {
    for (file, source, probe) in DIALECTS {
        if context.is_registered_operation(probe) {
            continue;
        }
        let module =
            Module::parse(context, source).ok_or_else(|| vec![format!("{file} does not parse")])?;
        if !load_irdl_dialects(&module) {
            return Err(vec![format!("{file} failed to load")]);
        }
    }
    Ok(())
}

/// The `alpha` and `beta` of a kernel op: `out := beta·out + alpha·product`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub alpha: f32,
    pub beta: f32,
}

/// `alpha` and `beta` as f32 attributes, as every kernel op carries them.
pub(crate) fn scale_attributes(
    context: &Context,
    Scale { alpha, beta }: Scale,
) -> [(melior::ir::Identifier<'_>, melior::ir::Attribute<'_>); 2] {
    use melior::ir::{attribute::FloatAttribute, Identifier, Type};
    let float = |value: f32| FloatAttribute::new(context, Type::float32(context), value as f64);
    [
        (Identifier::new(context, "alpha"), float(alpha).into()),
        (Identifier::new(context, "beta"), float(beta).into()),
    ]
}

/// A location for ops created by the compiler itself.
pub fn compiler_location(context: &Context) -> Location<'_> {
    Location::name(context, "dittoc", Location::unknown(context))
}
