"""The perplexity rule on logits (against a hand computation), windows, and
the held-out corpus: Rust's path order, the odd-indexed files, the cuts."""

import math
import os

import numpy as np
import pytest

import perplexity as P


def test_window_nll_by_hand():
    # vocab of 3; window ids [0, 2, 1]: rows 0 and 1 predict ids 2 and 1
    logits = [[1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)], [9.0, 9.0, 9.0]]
    nll, scored = P.window_nll(logits, [0, 2, 1])
    # row 0: -log(e^3 / (e + e^2 + e^3)); row 1: -log(1 / (1 + 1 + 2))
    by_hand = -math.log(math.e**3 / (math.e + math.e**2 + math.e**3)) - math.log(1 / 4)
    assert scored == 2
    assert nll == pytest.approx(by_hand, rel=1e-12)
    assert P.perplexity([nll], [scored]) == pytest.approx(math.exp(by_hand / 2), rel=1e-12)


def test_window_nll_is_float64_and_stable_for_large_logits():
    logits = np.array([[1000.0, 1000.0], [0, 0]], dtype=np.float32)
    nll, scored = P.window_nll(logits, [0, 1])
    assert nll == pytest.approx(math.log(2.0), rel=1e-12)


def test_window_nll_does_not_depend_on_the_chunking():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 17)).astype(np.float32)
    ids = rng.integers(0, 17, size=50).tolist()
    a = P.window_nll(logits, ids, rows_per_step=1)
    b = P.window_nll(logits, ids, rows_per_step=64)
    c = P.window_nll(logits, ids, rows_per_step=7)
    assert a[1] == b[1] == c[1] == 49
    assert a[0] == pytest.approx(b[0], rel=1e-12) and b[0] == pytest.approx(c[0], rel=1e-12)
    x = logits[:-1].astype(np.float64)
    ref = -(x - np.log(np.exp(x).sum(axis=1, keepdims=True)))[np.arange(49), ids[1:]].sum()
    assert a[0] == pytest.approx(ref, rel=1e-10)


def test_window_nll_needs_a_row_per_scored_token():
    with pytest.raises(ValueError):
        P.window_nll(np.zeros((1, 4)), [0, 1, 2])


def test_perplexity_over_windows_and_the_executables_number():
    # two windows: the total NLL over the total scored count
    assert P.perplexity([10.0, 20.0], [10, 10]) == pytest.approx(math.exp(1.5))
    # the executable prints exp(mean NLL); scored·ln(ppl) gives its total back
    assert P.nll_from_perplexity(math.exp(1.5), 20) == pytest.approx(30.0)
    with pytest.raises(ValueError):
        P.perplexity([], [])


def test_windows_do_not_overlap_and_need_enough_tokens():
    ids = list(range(10))
    assert P.windows(ids, 3, window=3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError):
        P.windows(ids, 4, window=3)


def test_rust_path_order_is_by_components_not_bytes():
    paths = ["/r/a-b/x.py", "/r/a/b.py", "/r/a.py", "/r/a/z/y.py"]
    # Rust: components "a" < "a-b" < "a.py"; plain bytes would put "a-b" and "a.py" before "a/"
    assert sorted(paths, key=P.rust_path_key) == ["/r/a/b.py", "/r/a/z/y.py", "/r/a-b/x.py", "/r/a.py"]
    assert sorted(paths) != sorted(paths, key=P.rust_path_key)


def test_rust_extension():
    assert P.rust_extension("x.py") == "py"
    assert P.rust_extension("x.tar.gz") == "gz"
    assert P.rust_extension(".py") is None
    assert P.rust_extension("Makefile") is None
    assert P.rust_extension("x.") == ""


def test_code_files_walk_sort_and_held_out_half(tmp_path):
    for rel in ("a/b.py", "a-b/x.py", "a.py", "a/z/y.c", "a/notes.txt", ".py", "c.rs", "d/e.sh"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    os.symlink(tmp_path / "d", tmp_path / "link")  # followed, as Rust's is_dir() does
    files = [str(p.relative_to(tmp_path)) for p in P.code_files(tmp_path)]
    assert files == ["a/b.py", "a/z/y.c", "a-b/x.py", "a.py", "c.rs", "d/e.sh", "link/e.sh"]
    assert [str(p.relative_to(tmp_path)) for p in P.held_out_files(P.code_files(tmp_path))] == \
        ["a/z/y.c", "a.py", "d/e.sh"]


def test_corpus_text_cuts_files_and_skips_non_utf8(tmp_path):
    a, b, c, d = (tmp_path / n for n in "abcd")
    a.write_text("é" * 10)  # 20 bytes: cut at 7 bytes -> 3 characters
    b.write_bytes(b"\xff\xfe not utf-8")
    c.write_text("0123456789")
    d.write_text("never reached")
    text, used = P.corpus_text([a, b, c, d], file_bytes=7, total_bytes=12)
    assert text == "ééé\n\n0123456\n\n"
    assert used == [a, c]
