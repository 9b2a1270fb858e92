"""Learn the metrical templates the meter estimate reads (``assets/meter_templates.json``).

For every piece of the *train* splits of the bundled corpora with one meter throughout, and
for bars of 2, 3 or 4 beats (the beat being the notated denominator, or a dotted one in
compound time: 6/8 is two beats, 3/2 three), counts per place in the bar how often a note
begins on each of the beat's marks (its start, quarters, thirds, half), how long the
longest note begun on the beat holds its voice, and where in the bar pieces begin and end. The
counts, smoothed by one, are the template's probabilities; :func:`tunesmith.music.meter.
estimate_meter` scores each bar hypothesis of a recording by the likelihood of its beats
under them.

    python scripts/meter_templates.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "meter_templates.json"
CORPORA = ("bach-chorales", "folk", "mozart", "beethoven", "monteverdi", "palestrina")


def beat_of(num: int, den: int) -> list[tuple[int, float]]:
    """The readings of a time signature as (beats per bar, quarters per beat) for bars of 2, 3
    or 4 beats (:func:`tunesmith.music.meter.beat_reading`: compound time by its dotted beats, 6/8
    is two). (Bars of six beats — 6/8 by its eighths, the level a beat tracker often follows in a
    jig — were tried: the right bar among the hypotheses went 0.79 → 0.80 of the fitting renders,
    the chosen one 0.57 → 0.50.)"""
    from tunesmith.music.meter import beat_reading

    r = beat_reading(num, den)
    return [] if r is None else [r]


def count(c: dict, rows: list, tpq: int, p: int, q: float) -> None:
    """Add one piece's beats, read as bars of ``p`` beats of ``q`` quarters, to the counts ``c``."""
    from tunesmith.music.meter import MARKS, beat_observations, place_in_beats, voice_spans

    start = np.concatenate([r["time"] for r in rows]) / tpq / q
    dur = voice_spans(start, np.concatenate([r["duration"] for r in rows]) / tpq / q,
                      np.concatenate([r["pitch"] for r in rows]).astype(np.int64))
    k, frac = place_in_beats(start)
    k0, k1 = int(k.min()), int(k.max())
    marks, cls = beat_observations(k - k0, frac, dur, k1 - k0 + 1)
    pos = (np.arange(k0, k1 + 1)) % p
    for j in range(len(MARKS)):
        np.add.at(c["marks"][:, j, :], (pos, marks[:, j]), 1)
    np.add.at(c["duration"], (pos, cls), 1)
    c["first"][k0 % p] += 1
    c["last"][k1 % p] += 1


def main() -> None:
    from tqdm import tqdm

    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.meter import BAR_BEATS, DURATION_EDGES, MARKS, N_DUR

    counts = {p: {"marks": np.ones((p, len(MARKS), 2)), "duration": np.ones((p, N_DUR)),
                  "first": np.ones(p), "last": np.ones(p)} for p in BAR_BEATS}
    # 3/4 and 6/8 read alike, as bars of three quarter-note beats (the level the tempo estimate
    # follows): which of the two a bar of three quarters is (meter.LABEL_TEMPLATES)
    labels = {sig: {"marks": np.ones((3, len(MARKS), 2)), "duration": np.ones((3, N_DUR)),
                    "first": np.ones(3), "last": np.ones(3)} for sig in ("3/4", "6/8")}
    used = dict.fromkeys(CORPORA, 0)
    for corpus in CORPORA:
        ds = open_dataset(corpus, progress=False)
        for entry in tqdm(ds.split("train"), desc=corpus, leave=False):
            s = ds.load(entry)
            m = s.music
            sigs = {(t.numerator, t.denominator) for t in m.time_signatures}
            if len(sigs) != 1:
                continue
            rows = [t.notes.numpy() for t in m.tracks if not t.is_drum and len(t.notes)]
            num, den = sigs.pop()
            readings = beat_of(num, den)
            if not rows or not readings:
                continue
            used[corpus] += 1
            for p, q in readings:
                count(counts[p], rows, m.tpq, p, q)
            if f"{num}/{den}" in labels:
                count(labels[f"{num}/{den}"], rows, m.tpq, 3, 1.0)
    out = {"marks": MARKS.round(4).tolist(), "duration_edges": DURATION_EDGES.tolist(), "pieces": used}
    for p, c in counts.items():
        out[str(p)] = {"onset": (c["marks"][:, :, 1] / c["marks"].sum(axis=2)).round(5).tolist(),
                       "duration": (c["duration"] / c["duration"].sum(axis=1, keepdims=True)).round(5).tolist(),
                       "first": (c["first"] / c["first"].sum()).round(5).tolist(),
                       "last": (c["last"] / c["last"].sum()).round(5).tolist(),
                       "pieces": int(c["first"].sum() - p)}
    out["three_quarters"] = {sig: {"onset": (c["marks"][:, :, 1] / c["marks"].sum(axis=2)).round(5).tolist(),
                                   "duration": (c["duration"] / c["duration"].sum(axis=1, keepdims=True)).round(5).tolist(),
                                   "pieces": int(c["first"].sum() - 3)} for sig, c in labels.items()}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} from {used}")


if __name__ == "__main__":
    main()
