"""source_copies: which weights a quantization copies bit-exactly."""

from dataclasses import dataclass
from enum import Enum

import numpy as np
import pytest

from source_copies import copies


class T(Enum):
    F32 = 0
    Q5_0 = 6
    Q4_0 = 2


@dataclass
class Tensor:
    tensor_type: T
    n_elements: int
    data: np.ndarray


def values(data, _type):
    return data


def test_copies_counts_identical_tensors_of_the_same_type():
    a = np.arange(8, dtype=np.float32)
    source = {
        "norm": Tensor(T.F32, 4, np.ones(4, np.float32)),  # F32: left out
        "kept": Tensor(T.Q5_0, 8, a),
        "requantized": Tensor(T.Q5_0, 16, np.arange(16, dtype=np.float32)),
        "same type, other values": Tensor(T.Q5_0, 8, a),
    }
    target = {
        "norm": Tensor(T.F32, 4, np.zeros(4, np.float32)),
        "kept": Tensor(T.Q5_0, 8, a.copy()),
        "requantized": Tensor(T.Q4_0, 16, np.arange(16, dtype=np.float32)),
        "same type, other values": Tensor(T.Q5_0, 8, a + 1),
    }
    share, kinds = copies(source, target, values)
    assert share == pytest.approx(8 / 32)
    assert kinds == {"Q5_0=": pytest.approx(8 / 32), "Q5_0->Q4_0": pytest.approx(16 / 32),
                     "Q5_0->Q5_0": pytest.approx(8 / 32)}
