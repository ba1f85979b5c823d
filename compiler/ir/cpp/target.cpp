// Whether LLVM's target for this host knows a CPU name, so that dittoc can
// refuse `--target-cpu NAME` before any work. Given an unknown name, LLVM's
// target machine prints "'NAME' is not a recognized processor for this
// target (ignoring processor)" and carries on, to a fatal error or to code
// for a generic CPU; the C API has no way to ask.

#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <memory>
#include <string>

extern "C" {

// 1 if the host triple's target knows `cpu`, 0 if it does not, -1 if LLVM
// has no target for the host.
int dittoHostTargetKnowsCpu(const char *cpu) {
  if (llvm::InitializeNativeTarget())
    return -1;
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return -1;
  std::unique_ptr<llvm::MCSubtargetInfo> info(
      target->createMCSubtargetInfo(triple, "", ""));
  if (!info)
    return -1;
  return info->isCPUStringValid(cpu) ? 1 : 0;
}

// Writes this machine's CPU name, as LLVM names it, NUL-terminated into
// `out` (cut to `size` bytes).
void dittoHostCpuName(char *out, size_t size) {
  if (size == 0)
    return;
  std::string name = llvm::sys::getHostCPUName().str();
  size_t n = name.size() < size - 1 ? name.size() : size - 1;
  name.copy(out, n);
  out[n] = 0;
}

} // extern "C"
