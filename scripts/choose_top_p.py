"""Choose a token model's default nucleus mass (``top_p``) on the fair yardstick, against
crops of its *training* pieces — never the held-out ones ``benchmarks/quality.py`` scores.

For each top-p of a grid, ``n`` pieces of ``bars`` bars are generated (seeds 1000 on,
not the benchmark's 0…n−1) with the model's other defaults and compared with ``n``
crops of training pieces in the same meters (:func:`tunesmith.evaluate.fair.fair_compare`),
twice, with two draws of crops. The rule: the top-p with the lowest mean two-sample
ROC AUC (the set hardest to tell from the real pieces).

    python scripts/choose_top_p.py folk [--corpus folk] [--grid 0.9,0.95,1.0] [--write]

``--write`` stores the choice in the model's config.json (``sampling.top_p``), which
``generate`` uses when ``--top-p`` is not given.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    from tunesmith.evaluate.fair import fair_compare, from_first_bar_line
    from tunesmith.generate.api import load_model
    from tunesmith.models.registry import resolve
    from tunesmith.music.dataset import open_dataset

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--corpus", help="the model's training corpus (default: the dataset its card names)")
    ap.add_argument("--grid", default="0.9,0.95,1.0")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    m = load_model(a.model)
    ds = open_dataset(a.corpus or m.config["dataset"]["name"], progress=False)
    train = ds.split("train")
    refs, names = [ds.load(e) for e in train], [e["id"] for e in train]
    rows = []
    for tp in (float(x) for x in a.grid.split(",")):
        pieces = [from_first_bar_line(m.generate(bars=a.bars, seed=1000 + i, top_p=tp).score, a.bars)
                  for i in range(a.n)]
        aucs, accs = [], []
        for draw in (1, 2):
            t = fair_compare(pieces, refs, names, bars=a.bars, n_reference=a.n, seed=draw)["two_sample"]
            aucs.append(t["auc"])
            accs.append(t["accuracy"])
        rows.append((sum(aucs) / 2, tp, aucs, accs))
        print(f"top-p {tp:g}: AUC {aucs[0]:.3f} / {aucs[1]:.3f}, accuracy {accs[0]:.3f} / {accs[1]:.3f}", flush=True)
    best = min(rows)[1]
    print(f"chosen: top-p {best:g}")
    if a.write:
        path = resolve(a.model) / "config.json"
        cfg = json.loads(path.read_text())
        cfg["sampling"] = {"top_p": best}
        path.write_text(json.dumps(cfg, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
