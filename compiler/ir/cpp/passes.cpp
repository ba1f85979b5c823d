// Registers passes written in Rust (compiler/ir/src/pass.rs) with MLIR's pass
// registry, so that MLIR's own pipeline parser, option parser, IR printing and
// diagnostics verification handle them like any upstream pass; and runs
// ditto-opt through MLIR's MlirOptMain.
//
// The C API's external passes (mlirCreateExternalPass) make pass instances but
// cannot register them under a name, and have no options; this is the part of
// the C++ API that fills the gap, and nothing more.

#include "mlir/CAPI/IR.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

extern "C" {

// A pass option: a string the Rust side parses. All strings are static.
struct DittoPassOption {
  const char *name;
  const char *description;
  const char *default_value;
};

// A pass defined in Rust; lives for the whole process (a Rust `static`).
struct DittoPassDef {
  const char *argument;     // e.g. "ditto-select-kernels"
  const char *name;         // e.g. "DittoSelectKernels"
  const char *description;
  const DittoPassOption *options;
  size_t option_count;
  // Checks the option values (option_count of them, in order) when a pipeline
  // is parsed; returns a malloc'ed message on error, or null.
  char *(*check)(const DittoPassDef *def, const char *const *values);
  // Runs the pass on a `builtin.module`; errors are emitted as diagnostics on
  // the ops they concern. Returns false on failure.
  bool (*run)(const DittoPassDef *def, MlirOperation module,
              const char *const *values);
  // Frees a message `check` returned.
  void (*free_message)(char *message);
  // The Rust definition (not used here).
  const void *rust;
};

} // extern "C"

namespace {

class DittoPass : public mlir::Pass {
public:
  explicit DittoPass(const DittoPassDef *def)
      : Pass(mlir::TypeID::getFromOpaquePointer(def),
             llvm::StringRef("builtin.module")),
        def(def) {
    for (size_t i = 0; i < def->option_count; ++i) {
      const DittoPassOption &o = def->options[i];
      options.push_back(std::make_unique<Option<std::string>>(
          *this, o.name, llvm::cl::desc(o.description),
          llvm::cl::init(std::string(o.default_value))));
    }
  }

  llvm::StringRef getArgument() const override { return def->argument; }
  llvm::StringRef getName() const override { return def->name; }
  llvm::StringRef getDescription() const override { return def->description; }

  mlir::LogicalResult initializeOptions(
      llvm::StringRef text,
      llvm::function_ref<mlir::LogicalResult(const llvm::Twine &)> errorHandler)
      override {
    if (mlir::failed(Pass::initializeOptions(text, errorHandler)))
      return mlir::failure();
    std::vector<std::string> storage;
    std::vector<const char *> values = optionValues(storage);
    if (char *message = def->check(def, values.data())) {
      std::string copy(message);
      def->free_message(message);
      return errorHandler(llvm::Twine(def->argument) + ": " + copy);
    }
    return mlir::success();
  }

protected:
  bool canScheduleOn(mlir::RegisteredOperationName opName) const override {
    return opName.getStringRef() == "builtin.module";
  }

  void runOnOperation() override {
    std::vector<std::string> storage;
    std::vector<const char *> values = optionValues(storage);
    if (!def->run(def, wrap(getOperation()), values.data()))
      signalPassFailure();
  }

  // A fresh instance; Pass::clone copies the option values into it.
  std::unique_ptr<mlir::Pass> clonePass() const override {
    return std::make_unique<DittoPass>(def);
  }

private:
  std::vector<const char *> optionValues(std::vector<std::string> &storage) {
    storage.clear();
    for (auto &option : options)
      storage.push_back(option->getValue());
    std::vector<const char *> values;
    for (auto &value : storage)
      values.push_back(value.c_str());
    return values;
  }

  const DittoPassDef *def;
  std::vector<std::unique_ptr<Option<std::string>>> options;
};

} // namespace

extern "C" {

// Registers `def` under its argument (once per process).
void dittoRegisterPass(const DittoPassDef *def) {
  mlir::registerPass(
      [def]() -> std::unique_ptr<mlir::Pass> { return std::make_unique<DittoPass>(def); });
}

// mlir-opt's main with `registry`'s dialects, every registered pass, and the
// IRDL dialects of `irdl_file` loaded into each context before parsing.
// `check_input` sees the input's text (and its name) first, before the output
// is opened; a message it returns (malloc'ed by Rust, freed with
// `free_message`) is printed and the tool fails.
int dittoOptMain(int argc, char **argv, const char *tool_name,
                 MlirDialectRegistry registry, const char *irdl_file,
                 char *(*check_input)(const char *text, size_t size,
                                      const char *name),
                 void (*free_message)(char *message)) {
  mlir::DialectRegistry &dialects = *unwrap(registry);
  auto [input, output] =
      mlir::registerAndParseCLIOptions(argc, argv, tool_name, dialects);
  mlir::MlirOptMainConfig config = mlir::MlirOptMainConfig::createFromCLOptions();
  config.setIrdlFile(irdl_file);
  // The passes written in Rust cannot name the C++ dialect classes they
  // create ops of (getDependentDialects); load every dialect of the registry
  // before the pipeline runs instead, as dittoc's context does.
  mlir::MlirOptMainConfig parsed = config;
  config.setPassPipelineSetupFn([parsed](mlir::PassManager &pm) {
    pm.getContext()->loadAllAvailableDialects();
    return parsed.setupPassPipeline(pm);
  });
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> file = mlir::openInputFile(input, &error);
  if (!file) {
    llvm::errs() << error << "\n";
    return 1;
  }
  std::string name = file->getBufferIdentifier().str();
  if (char *message = check_input(file->getBufferStart(), file->getBufferSize(),
                                  name.c_str())) {
    llvm::errs() << message << "\n";
    free_message(message);
    return 1;
  }
  std::unique_ptr<llvm::ToolOutputFile> out = mlir::openOutputFile(output, &error);
  if (!out) {
    llvm::errs() << error << "\n";
    return 1;
  }
  if (mlir::failed(mlir::MlirOptMain(out->os(), std::move(file), dialects, config)))
    return 1;
  out->keep();
  return 0;
}

} // extern "C"
