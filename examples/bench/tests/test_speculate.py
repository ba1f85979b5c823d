"""speculate.py's pure pieces: reading the executable's timing lines and
counting mismatched tokens."""

import speculate


def test_timing_lines():
    plain = speculate.TIMING.search("decode: 95 tokens in 2.650 s (35.8 tok/s)")
    assert (plain["tokens"], plain["seconds"], plain["per_forward"]) == ("95", "2.650", None)
    spec = speculate.TIMING.search(
        "speculation: 96 tokens in 36 forwards (2.67 per forward), 1.305 s (73.6 tok/s, "
        "2.04x the plain step's 36.1 tok/s); 28 verifications (mean accepted 2.11), "
        "retrieval 0.3 ms (0.0%); drafted 79, accepted 59 (75%)")
    assert (spec["tokens"], spec["seconds"], spec["per_forward"]) == ("96", "1.305", "2.67")


def test_mismatches_count_from_the_first_difference():
    assert speculate.mismatches([1, 2, 3], [1, 2, 3]) == 0
    assert speculate.mismatches([1, 2, 3, 4], [1, 9, 3, 4]) == 3
    assert speculate.mismatches([1, 2], [1, 2, 3]) == 1
    assert speculate.mismatches([], []) == 0
