"""Style control (`generate --style`) → benchmarks/results-style.json (BENCHMARKS.md via run.py).

For every collection and Essen region a style model knows, N tunes are generated with that
style asked for, and the bundled classifiers (collection; region among Essen songs) say
where each tune comes from. The figure is the share of tunes classified as the style that
was asked for, beside the same share for tunes generated without a style (the baseline:
what the model writes when nobody asks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results-style.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="folk", help="a model trained with --styles (default: the bundled folk)")
    ap.add_argument("-n", type=int, default=20, help="tunes per style")
    ap.add_argument("--bars", type=int, default=16)
    a = ap.parse_args(argv)
    from tunesmith.generate.api import load_model
    from tunesmith.mir.classify import load_classifier

    mm = load_model(a.model)
    if not getattr(mm, "styles", None):
        print(f"{a.model} has no style tokens", file=sys.stderr)
        return 2
    coll, reg = load_classifier("collection"), load_classifier("region")

    def predict(clf, scores):
        return [clf.classes[int(clf.predict_piece(s).argmax())] for s in scores]

    def tunes(style, n, offset=0):
        return [mm.generate(bars=a.bars, seed=offset + i, style=style).score for i in range(n)]

    t0 = time.perf_counter()
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "date": date.today().isoformat(), "model": a.model, "n": a.n, "bars": a.bars, "collections": {},
           "regions": {}}
    free = tunes(None, a.n * 2, 10_000)
    free_coll = Counter(predict(coll, free))
    essen_free = [s for s, c in zip(free, predict(coll, free)) if c == "essen"] or free
    free_reg = Counter(predict(reg, essen_free))
    for name in mm.style_names():
        kind = "collections" if f"collection:{name}" in mm.styles else "regions"
        if kind == "regions" and name not in reg.classes:
            continue
        scores = tunes(name, a.n)
        if kind == "collections":
            pred = predict(coll, scores)
            base = free_coll[name] / sum(free_coll.values())
        else:
            pred = predict(reg, scores)
            base = free_reg[name] / sum(free_reg.values())
        hit = sum(p == name for p in pred) / len(pred)
        res[kind][name] = {"asked_and_classified": round(hit, 3), "without_style": round(base, 3),
                           "classified_as": dict(Counter(pred).most_common(3))}
        print(f"{kind[:-1]:10} {name:16} {hit:.2f} (without a style {base:.2f})", flush=True)
    for kind in ("collections", "regions"):
        rows = res[kind].values()
        if rows:
            res[f"{kind}_mean"] = {"asked_and_classified": round(sum(r["asked_and_classified"] for r in rows) / len(rows), 3),
                                   "without_style": round(sum(r["without_style"] for r in rows) / len(rows), 3)}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k.endswith("_mean")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
