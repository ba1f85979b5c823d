#!/usr/bin/env python3
"""Edit a JSON file in place, for the bad-input tests (lit-tests/errors).

    edit_json.py FILE KEY=JSON...   set KEY (top level) to the JSON value
    edit_json.py FILE -KEY...       remove KEY
    edit_json.py FILE =JSON         replace the whole file by the JSON value
"""

import json
import sys


def main(argv: list[str]) -> int:
    path, edits = argv[0], argv[1:]
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for edit in edits:
        if edit.startswith("="):
            doc = json.loads(edit[1:])
        elif edit.startswith("-"):
            del doc[edit[1:]]
        else:
            key, _, value = edit.partition("=")
            doc[key] = json.loads(value)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
