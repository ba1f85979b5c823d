"""The harness's modules live one directory up (examples/bench), as scripts
do; put it on sys.path for the tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
