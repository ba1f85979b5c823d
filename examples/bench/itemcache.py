"""Per-item result cache of the harness, so that an interrupted run resumes.

An item is one measurement of one system in one setting (a timed run of a
round, a perplexity window, a HumanEval task, ...), named by a dict of
everything its result depends on (the system's build identity, the inputs'
digests, the settings). Its result is stored as one JSON file,
`<root>/<kind>/<sha256 of the item>.json`, written atomically once the
measurement is done. A later run that asks for the same item gets the
stored result back marked `cached` (with the date it was measured), unless
the cache was opened `fresh`: then every item is measured again and
overwrites its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    """A result and where it came from."""

    value: dict
    cached: bool
    measured: str  # UTC date of the measurement


def item_key(item: dict) -> str:
    """Stable digest of an item description (keys sorted)."""
    text = json.dumps(item, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ItemCache:
    """Results by item, one JSON file each under `root`."""

    def __init__(self, root: Path, fresh: bool = False):
        self.root, self.fresh = root, fresh
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, item: dict) -> Path:
        return self.root / kind / f"{item_key({'kind': kind, **item})}.json"

    def lookup(self, kind: str, item: dict) -> Entry | None:
        """The stored result of the item, unless fresh or absent or unreadable."""
        if self.fresh:
            return None
        path = self.path(kind, item)
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if stored.get("item") != item:
            return None
        return Entry(stored["value"], True, stored["measured"])

    def store(self, kind: str, item: dict, value: dict) -> Entry:
        """Write the result of a measurement just made."""
        measured = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        path = self.path(kind, item)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps({"item": item, "value": value, "measured": measured}))
        tmp.replace(path)
        return Entry(value, False, measured)

    def get(self, kind: str, item: dict, measure: Callable[[], dict]) -> Entry:
        """The item's stored result, or `measure()`'s, stored."""
        entry = self.lookup(kind, item)
        if entry is not None:
            self.hits += 1
            return entry
        return self.measured(kind, item, measure())

    def found(self, kind: str, items: dict[str, dict]) -> dict[str, dict]:
        """The stored values of those of `items` (by key) the cache holds,
        each counted as a hit; the rest are to be measured."""
        values = {}
        for key, item in items.items():
            entry = self.lookup(kind, item)
            if entry is not None:
                self.hits += 1
                values[key] = entry.value
        return values

    def measured(self, kind: str, item: dict, value: dict) -> Entry:
        """Store a result measured just now (counted as a miss)."""
        self.misses += 1
        return self.store(kind, item, value)
