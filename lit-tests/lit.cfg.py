# lit configuration for dittoc's regression tests.
#
# Substitutions:
#   %dittoc    the compiler driver (target/release/dittoc)
#   %ditto-opt the single-pass driver (target/release/ditto-opt)
#   %python    the project's virtualenv Python
#   %gen_tiny  examples/tiny/gen_tiny.py (tiny synthetic models)
#   %ref       lit-tests/tools/ref_forward.py (independent numpy reference)
#   %compare   lit-tests/tools/compare_logits.py
#   FileCheck, not: from LLVM 22
import os

import lit.formats

config.name = "dittoc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["tools", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)

root = os.path.dirname(config.test_source_root)
venv_python = os.path.join(root, ".venv", "bin", "python")
python = venv_python if os.path.exists(venv_python) else "python3"
llvm_bin = "/usr/lib/llvm-22/bin"

config.substitutions.append(("%dittoc", os.path.join(root, "target", "release", "dittoc")))
config.substitutions.append(("%ditto-opt", os.path.join(root, "target", "release", "ditto-opt")))
config.substitutions.append(("%python", python))
config.substitutions.append(("%gen_tiny", os.path.join(root, "examples", "tiny", "gen_tiny.py")))
config.substitutions.append(("%ref", os.path.join(config.test_source_root, "tools", "ref_forward.py")))
config.substitutions.append(("%compare", os.path.join(config.test_source_root, "tools", "compare_logits.py")))
config.environment["PATH"] = os.pathsep.join([llvm_bin, config.environment.get("PATH", os.environ["PATH"])])
