"""How the upbeat of a MIDI file is read (music/meter.py ``PICKUP_WEIGHTS``).

MIDI has no upbeat: a piece that begins with one is written with its first note at time 0
and its bar lines a beat (or a few) off. For every piece of the *train* splits of the bundled
corpora with one meter throughout and an upbeat of whole eighth notes (or none), its notes are
moved so that the first stands at 0, as such a file holds them, and each candidate upbeat's
evidence is computed (:func:`tunesmith.music.meter.pickup_evidence`). The weights are fitted on one
half of the pieces by maximum likelihood (a conditional logit over each piece's candidates),
then the prior for "no upbeat" is raised until at least 98% of that half's pieces without one
are left as they are (a file whose bars are right should stay so); the figures of the other
half are printed beside. (A random search for the most upbeats found under a 99% constraint
found 0.64 / 0.62 of them, with 0.85 of all pieces right, against 0.76 / 0.74 and 0.89 here.) The benchmark
(``benchmarks/mir.py --only pickup``) measures the shipped weights on held-out pieces.

    python scripts/tune_pickup.py [--per-corpus 600]
"""

from __future__ import annotations

import argparse

import numpy as np

CORPORA = ("bach-chorales", "folk", "mozart", "beethoven", "monteverdi", "palestrina")


def pickup_case(s) -> tuple[float, tuple] | None:
    """(the true upbeat in quarters, the evidence of the piece as a MIDI file would hold it) of one
    score, or None where its meter has no template, changes, or its upbeat is no whole number of
    eighths."""
    from tunesmith.music.meter import PICKUP_UNIT, pickup_evidence

    m = s.music
    sigs = {(t.numerator, t.denominator) for t in m.time_signatures}
    rows = [t.notes.numpy() for t in m.tracks if not t.is_drum and len(t.notes)]
    if len(sigs) != 1 or not rows:
        return None
    num, den = sigs.pop()
    start = np.concatenate([r["time"] for r in rows]) / m.tpq
    dur = np.concatenate([r["duration"] for r in rows]) / m.tpq
    pitch = np.concatenate([r["pitch"] for r in rows])
    bar = num * 4 / den
    first = float(start.min())
    truth = (bar - first % bar) % bar
    if min(truth, bar - truth) < 1 / 48:  # a tick or two after the bar line (a reader's rounding): none
        truth = 0.0
    if abs(truth / PICKUP_UNIT - round(truth / PICKUP_UNIT)) > 1e-3:
        return None
    ev = pickup_evidence(start - first, dur, pitch, num, den)
    return None if ev is None else (round(truth / PICKUP_UNIT) * PICKUP_UNIT, ev)


def cases(split: str, per_corpus: int, seed: int = 0) -> list[tuple[str, float, tuple]]:
    from tqdm import tqdm

    from tunesmith.music.dataset import open_dataset

    rng = np.random.default_rng(seed)
    out = []
    for corpus in CORPORA:
        ds = open_dataset(corpus, progress=False)
        entries = [e for e in ds.entries if (e["split"] == "train") == (split == "train")]
        pick = rng.choice(len(entries), min(len(entries), per_corpus), replace=False)
        for k in tqdm(pick, desc=f"{corpus} ({split})", leave=False):
            c = pickup_case(ds.load(entries[int(k)]))
            if c is not None:
                out.append((corpus, *c))
    return out


def accuracy(data, w: np.ndarray) -> tuple[float, float, float]:
    """Right overall; of the pieces without an upbeat, left alone; of those with one, found."""
    right = np.array([abs(c[int(np.argmax(t @ w))] - truth) < 1e-6 for _, truth, (c, t) in data])
    none = np.array([truth == 0 for _, truth, _ in data])
    return float(right.mean()), float(right[none].mean()), float(right[~none].mean())


def fit_weights(data) -> np.ndarray:
    """Maximum-likelihood weights of a conditional logit: each piece's candidates scored by the
    weighted terms, softmax over them, the true upbeat's log-probability summed (L-BFGS)."""
    from scipy.optimize import minimize

    def nll(w):
        total, grad = 0.0, np.zeros_like(w)
        for _, truth, (cands, terms) in data:
            s = terms @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            j = int(np.argmin(np.abs(cands - truth)))
            total -= np.log(p[j] + 1e-12)
            grad -= terms[j] - p @ terms
        return total / len(data), grad / len(data)

    return minimize(nll, np.zeros(data[0][2][1].shape[1]), jac=True, method="L-BFGS-B").x


def main() -> None:
    from tunesmith.music.meter import PICKUP_WEIGHTS

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-corpus", type=int, default=800)
    ap.add_argument("--left-alone", type=float, default=0.98,
                    help="the share of the fitting half's pieces without an upbeat that must be left so")
    a = ap.parse_args()
    data = cases("train", a.per_corpus)
    order = np.random.default_rng(0).permutation(len(data))
    fit, check = [data[i] for i in order[::2]], [data[i] for i in order[1::2]]
    print(f"{len(data)} pieces, {sum(t > 0 for _, t, _ in data)} with an upbeat")
    w = fit_weights(fit)
    print(f"  maximum likelihood: fitting half {np.round(accuracy(fit, w), 3)}, other half {np.round(accuracy(check, w), 3)}")
    # a file whose bars are right should stay so: the prior for "no upbeat" raised until enough are
    for _ in range(80):
        if accuracy(fit, w)[1] >= a.left_alone:
            break
        w[-1] += 0.05
    names = list(PICKUP_WEIGHTS)
    print("weights:", {k: round(float(x), 3) for k, x in zip(names, w)})
    now = np.array(list(PICKUP_WEIGHTS.values()))
    print("(right, no upbeat left alone, upbeat found)")
    for label, d in (("fitting half", fit), ("other half", check)):
        print(f"  {label}: these weights {np.round(accuracy(d, w), 3)}; the shipped {np.round(accuracy(d, now), 3)}")


if __name__ == "__main__":
    main()
