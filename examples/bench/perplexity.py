"""Perplexity on a held-out code corpus, by one rule for every system.

The corpus: Python's standard-library sources on this machine, the files
that `dittoc quantize` does NOT calibrate on. Its default calibration set
(compiler/driver/src/quantize.rs) walks the newest /usr/lib/python3.X,
keeps code files (by extension), sorts them the way Rust sorts PathBufs
(component by component) and takes the even-indexed ones (0, 2, 4, …);
here the odd-indexed ones (1, 3, 5, …) of the same list are held out. Each
contributes its first `FILE_BYTES` (cut at a character boundary; files that
are not UTF-8 are skipped, as Rust's read_to_string does), joined by blank
lines, until the text holds `CORPUS_BYTES`. The text is fixed by the machine's
standard library alone, so a run with fewer windows scores a prefix of a
run with more.

The rule (the dittoc executable's `--perplexity`): the token ids, tokenized
once, are cut into non-overlapping windows of `WINDOW` tokens; each window is
evaluated from an empty context and every token after its first is scored
by the log-softmax of the logits at the position before it; perplexity =
exp(total negative log-likelihood / scored tokens). `window_nll` applies it
to one window's logits (for llama.cpp), in float64.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

WINDOW = 512
FILE_BYTES = 16 * 1024
CORPUS_BYTES = 128 * 1024
# compiler/driver/src/quantize.rs: CODE_EXTENSIONS.
CODE_EXTENSIONS = frozenset(["py", "rs", "c", "h", "cc", "cpp", "hpp", "js", "ts", "go", "java",
                             "rb", "sh", "lua"])


def rust_path_key(path: str) -> tuple[bytes, ...]:
    """Sort key equal to Rust's `Ord for Path` on absolute, normalized
    paths: component by component, each compared as bytes. (Not the plain
    byte order of the whole string: "a/b" < "a-b" for Rust, as "a" < "a-b",
    although '-' < '/'.)"""
    return tuple(c for c in os.fsencode(path).split(b"/") if c not in (b"", b"."))


def rust_extension(name: str) -> str | None:
    """Rust's `Path::extension` of a file name: the part after the last dot,
    None when there is no dot or the only dot leads the name (".bashrc")."""
    before, dot, after = name.rpartition(".")
    if not dot or not before or name == "..":
        return None
    return after


def code_files(root: Path) -> list[Path]:
    """Every code file under `root`, sorted like quantize.rs's
    `calibration_files` before it takes every other one: the same walk
    (directories through symlinks too), the same extensions."""
    files: list[str] = []
    stack = [str(root)]
    while stack:
        for entry in os.scandir(stack.pop()):
            if os.path.isdir(entry.path):
                stack.append(entry.path)
            elif rust_extension(entry.name) in CODE_EXTENSIONS:
                files.append(entry.path)
    return [Path(p) for p in sorted(files, key=rust_path_key)]


def default_stdlib() -> Path:
    """quantize.rs's `default_code_set`: the last (sorted) /usr/lib/python3.*
    that has a json/ package."""
    found = sorted(p for p in Path("/usr/lib").glob("python3.*") if (p / "json").is_dir())
    if not found:
        raise FileNotFoundError("no /usr/lib/python3.*/ with the standard library's sources")
    return found[-1]


def held_out_files(files: Sequence[Path]) -> list[Path]:
    """The odd-indexed files: the ones calibration leaves out."""
    return list(files[1::2])


def corpus_text(files: Iterable[Path], file_bytes: int = FILE_BYTES, total_bytes: int = CORPUS_BYTES) -> tuple[str, list[Path]]:
    """(text, files used): the first `file_bytes` of each file (UTF-8 only),
    each followed by a blank line, until the text reaches `total_bytes`."""
    parts: list[str] = []
    used: list[Path] = []
    size = 0
    for path in files:
        if size >= total_bytes:
            break
        try:
            content = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        head = content.encode("utf-8")[:file_bytes].decode("utf-8", "ignore")
        parts.append(head + "\n\n")
        used.append(path)
        size += len(parts[-1].encode("utf-8"))
    return "".join(parts), used


def text_digest(text: str) -> str:
    """Short sha256 of a text (for the report and the cache keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def windows(ids: Sequence[int], count: int, window: int = WINDOW) -> list[list[int]]:
    """The first `count` non-overlapping windows of `window` ids; ValueError
    when the ids do not fill them."""
    if len(ids) < count * window:
        raise ValueError(f"the corpus has {len(ids)} tokens, fewer than {count} windows of {window}")
    return [list(ids[i * window:(i + 1) * window]) for i in range(count)]


def window_nll(logits, ids: Sequence[int], rows_per_step: int = 64) -> tuple[float, int]:
    """(sum of −log p(ids[t] | ids[:t]) over t = 1…T−1, T−1) from a window's
    logits [T, vocab] (row t = the prediction after ids[t]), in float64."""
    import numpy as np

    logits = np.asarray(logits)
    t = len(ids)
    if logits.shape[0] < t - 1:
        raise ValueError(f"{logits.shape[0]} rows of logits for a window of {t} tokens")
    total = 0.0
    targets = np.asarray(ids[1:], dtype=np.int64)
    for start in range(0, t - 1, rows_per_step):
        x = np.asarray(logits[start:min(start + rows_per_step, t - 1)], dtype=np.float64)
        m = x.max(axis=1)
        lse = np.log(np.exp(x - m[:, None]).sum(axis=1)) + m
        y = targets[start:start + len(x)]
        total += float((lse - x[np.arange(len(x)), y]).sum())
    return total, t - 1


def nll_from_perplexity(ppl: float, scored: int) -> float:
    """Total NLL of `scored` tokens whose perplexity is `ppl`."""
    return scored * math.log(ppl)


def perplexity(nll_sums: Iterable[float], counts: Iterable[int]) -> float:
    """exp(Σ NLL / Σ scored tokens) over windows."""
    total, n = sum(nll_sums), sum(counts)
    if n <= 0:
        raise ValueError("perplexity of no scored tokens")
    return math.exp(total / n)
