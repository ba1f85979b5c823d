// Parses a module the way mlir-opt does: the top-level ops of the text go
// into one `builtin.module` (or are that module, when the text is a single
// one), every location names the text by `name`, and a syntax error is
// MLIR's one diagnostic at its line and column. The C API has no such call:
// mlirOperationCreateParse wants a single top-level op, and
// mlirModuleCreateParse names no source.

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Support.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"

extern "C" {

// The module parsed from `text`, or null after MLIR emitted its diagnostics
// on `context`. Not verified (the caller does it, to tell a syntax error
// from a module that does not verify).
MlirModule dittoParseModule(MlirContext context, MlirStringRef text,
                            MlirStringRef name) {
  mlir::ParserConfig config(unwrap(context), /*verifyAfterParse=*/false);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(unwrap(text), config,
                                              unwrap(name));
  return wrap(module.release());
}

} // extern "C"
