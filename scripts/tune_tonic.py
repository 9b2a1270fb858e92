"""How a tune's tonic reader (music/keys.py ``tune_key``) was fitted: its weights, ``assets/tune_tonic.json``.

The tunes of O'Neill's and Ryan's collections state their key in their ABC K: field, mode
included (``K:Edor``, ``K:Amix``, ``K:Em``, ``K:G``); Essen's K: fields give the signature
only, so they cannot teach a tonic. On the *train* split of those tunes, every (tonic, mode)
:func:`tunesmith.music.keys.tune_candidates` offers is scored by a linear function of its
features, and the weights maximise the likelihood of the stated (tonic, mode) under a softmax
over a tune's candidates (a conditional logit, with a small L2 penalty); tunes whose stated
reading is not among their candidates (a tune of a harmonic minor whose best scales leave its
tonic's scale out) are left out of the fit. The benchmark (benchmarks/mir.py ``--only tunekey``)
measures the reader on the held-out splits.

    python scripts/tune_tonic.py [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json

import numpy as np

L2 = 0.01
SCALE_SLACK = 0.02  # candidate scales: those holding within 2% of the tune's notes of the best


def stated_tunes(splits: tuple[str, ...]) -> list[tuple[object, int, str, int | None]]:
    """(notes, stated tonic, stated mode, key signature) of the O'Neill's and Ryan's tunes in ``splits``
    whose K: field names a tonic and a mode."""
    from tunesmith.evaluate.metrics import extract_notes
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.keys import TUNE_MIN_NOTES, mode_named, parse_key

    ds = open_dataset("folk", progress=False)
    out = []
    for e in ds.entries:
        src = e["source"].lower()
        if e["split"] not in splits or not ("oneill" in src or "ryan" in src):
            continue
        key = (e.get("meta") or {}).get("key") or ""
        tonic_text, _, mode_text = key.partition(" ")
        mode = mode_named(mode_text)
        if mode is None:
            continue
        try:
            tonic = parse_key(f"{tonic_text} major")[0]
        except Exception:  # noqa: BLE001 - a K: field the key parser cannot spell
            continue
        score = ds.load(e)
        n = extract_notes(score)
        sig = int(score.music.key_signatures[0].key) if len(score.music.key_signatures) else None
        if n.pitched.sum() >= TUNE_MIN_NOTES:
            out.append((n, tonic, mode, sig))
    return out


def fit(tunes, slack: float = SCALE_SLACK) -> np.ndarray:
    from scipy.optimize import minimize

    from tunesmith.mir.keys import line_of
    from tunesmith.music.keys import tune_candidates

    rows = []
    for n, tonic, mode, _ in tunes:
        cands = tune_candidates(line_of(n), slack)
        y = next((i for i, (t, m, _) in enumerate(cands) if t == tonic and m == mode), None)
        if y is not None:
            rows.append((np.array([x for _, _, x in cands]), y))

    def nll(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, y in rows:
            z = x @ w
            z = z - z.max()
            p = np.exp(z)
            p /= p.sum()
            total -= np.log(p[y])
            grad -= x[y] - p @ x
        return total + L2 * w @ w, grad + 2 * L2 * w

    w0 = np.zeros(rows[0][0].shape[1])
    return minimize(nll, w0, jac=True, method="L-BFGS-B").x


def main() -> None:
    from tunesmith.music.keys import TUNE_FEATURES, TUNE_MODEL_FILE

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help=f"write the weights to {TUNE_MODEL_FILE}")
    a = ap.parse_args()
    train = stated_tunes(("train",))
    w = fit(train)
    print(f"{len(train)} train tunes; weights:")
    for name, v in zip(TUNE_FEATURES, w):
        print(f"  {name:16} {v:+.3f}")
    if a.write:
        TUNE_MODEL_FILE.write_text(json.dumps({
            "features": list(TUNE_FEATURES), "weights": [round(float(v), 6) for v in w], "scale_slack": SCALE_SLACK,
            "fitted": datetime.date.today().isoformat(), "train_tunes": len(train),
            "data": "O'Neill's 1850 and Ryan's Mammoth, train split, the tonic and mode of each ABC K: field",
            "script": "scripts/tune_tonic.py"}, indent=1) + "\n")
        print(f"wrote {TUNE_MODEL_FILE}")


if __name__ == "__main__":
    main()
