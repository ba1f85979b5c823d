#!/usr/bin/env python3
"""Perplexity from the independent numpy reference, by the rule the
executable's ``--perplexity`` documents: non-overlapping windows of CTX
tokens; within each, every token after the first is predicted from the ones
before it; perplexity = exp(mean negative log-likelihood).

    ref_perplexity.py MODEL --tokens 1,2,3,... --ctx 16
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ref_forward import KVCache, load_model, parse_tokens  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--ctx", type=int, default=512)
    args = parser.parse_args()
    model = load_model(args.model)
    tokens = parse_tokens(args.tokens)
    nll, scored = 0.0, 0
    for start in range(0, len(tokens), args.ctx):
        window = tokens[start:start + args.ctx]
        if len(window) < 2:
            continue
        logits = model.forward(window, KVCache(model.config.n_layers)).astype(np.float64)
        for row, target in enumerate(window[1:]):
            z = logits[row] - logits[row].max()
            nll += np.log(np.exp(z).sum()) - z[target]
            scored += 1
    print(f"{np.exp(nll / scored):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
