"""Per-item cache: an item is measured once, comes back marked cached,
`fresh` measures again, a changed item is a different item, a broken file
is measured again."""

import json

import itemcache
from itemcache import ItemCache


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"tok_s": 10.0 * self.calls}


ITEM = {"system": {"family": "dittoc", "build": "abc"}, "measure": "decode", "threads": 2, "run": 0}


def test_measured_once_then_cached(tmp_path):
    measure = Counter()
    first = ItemCache(tmp_path).get("speed", ITEM, measure)
    assert (first.value, first.cached) == ({"tok_s": 10.0}, False)
    again = ItemCache(tmp_path)  # a later run: resumes from the files
    second = again.get("speed", ITEM, measure)
    assert (second.value, second.cached, second.measured) == ({"tok_s": 10.0}, True, first.measured)
    assert measure.calls == 1 and (again.hits, again.misses) == (1, 0)


def test_fresh_measures_again_and_overwrites(tmp_path):
    measure = Counter()
    ItemCache(tmp_path).get("speed", ITEM, measure)
    fresh = ItemCache(tmp_path, fresh=True).get("speed", ITEM, measure)
    assert (fresh.value, fresh.cached) == ({"tok_s": 20.0}, False)
    assert ItemCache(tmp_path).get("speed", ITEM, measure).value == {"tok_s": 20.0}
    assert measure.calls == 2


def test_a_different_item_or_kind_is_measured(tmp_path):
    measure = Counter()
    cache = ItemCache(tmp_path)
    cache.get("speed", ITEM, measure)
    cache.get("speed", {**ITEM, "run": 1}, measure)
    cache.get("speed", {**ITEM, "system": {"family": "dittoc", "build": "new"}}, measure)
    cache.get("perplexity", ITEM, measure)
    assert measure.calls == 4 and cache.misses == 4


def test_key_order_does_not_matter():
    assert itemcache.item_key({"a": 1, "b": [1, 2]}) == itemcache.item_key({"b": [1, 2], "a": 1})
    assert itemcache.item_key({"a": 1}) != itemcache.item_key({"a": 2})


def test_a_broken_or_foreign_file_is_measured_again(tmp_path):
    measure = Counter()
    cache = ItemCache(tmp_path)
    path = cache.path("speed", ITEM)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert cache.get("speed", ITEM, measure).cached is False
    path.write_text(json.dumps({"item": {"other": 1}, "value": {}, "measured": "x"}))
    assert cache.get("speed", ITEM, measure).cached is False
    assert measure.calls == 2
    assert not list(path.parent.glob("*.partial"))
