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

pub mod ditto;

/// IRDL source of the `ditto` dialect.
pub const DITTO_IRDL: &str = include_str!("../irdl/ditto.irdl.mlir");

/// Loads every project dialect into `context` (which must have the upstream
/// `irdl` dialect loaded). Loading twice is a no-op.
pub fn load(context: &Context) -> Result<(), Vec<String>> {
    if context.is_registered_operation("ditto.weight") {
        return Ok(());
    }
    let module = Module::parse(context, DITTO_IRDL)
        .ok_or_else(|| vec!["dialects/irdl/ditto.irdl.mlir does not parse".to_string()])?;
    if load_irdl_dialects(&module) {
        Ok(())
    } else {
        Err(vec![
            "dialects/irdl/ditto.irdl.mlir failed to load".to_string()
        ])
    }
}

/// A location for ops created by the compiler itself.
pub fn compiler_location(context: &Context) -> Location<'_> {
    Location::name(context, "dittoc", Location::unknown(context))
}
