"""How the meter estimate's weights (music/meter.py ``METER_WEIGHTS``) were chosen.

Pieces from the *train* splits of bach-chorales and folk (the benchmark, benchmarks/mir.py,
uses held-out pieces) are rendered with the SoundFont at 70–140 qpm on piano, strings, organ,
flute and guitar — each starting with its first note, as a recording does, not with the
silence a pickup bar is padded with — and transcribed (basic-pitch, refined onsets). The
renders' notes and their true bar lines are kept in ``~/.cache/tunesmith/meter-renders-N.json``
(N the seed), so that the weights can be refitted without transcribing again. Every weighting
is scored by the share of pieces whose estimated bar is the true bar (length within 4%, a
downbeat within 70 ms of a true one), on the fitting set and on a second set; the weighting
with the best sum is printed.

    python scripts/tune_meter.py [--pieces 150]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.mir import render_from_first_note, same_bar  # noqa: E402
from scripts.tune_tempo import PROGRAMS, best_weightings, train_pieces  # noqa: E402

from tunesmith.music.meter import METER_WEIGHTS  # noqa: E402


def collect(n_per_corpus: int, seed: int) -> list[dict]:
    """Renders of n_per_corpus train pieces of each corpus (``render_from_first_note`` of the
    benchmark): their transcribed notes, the rendered tempo, the bar's length in seconds and the
    first bar line's time (seconds, may be negative: the bar line before a pickup)."""
    from tunesmith.music.dataset import tunesmith_home

    cache = tunesmith_home() / f"meter-renders-{seed}-{n_per_corpus}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    pieces = train_pieces(n_per_corpus, rng)  # the same draw as the tempo's tuning
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(tqdm(pieces, desc=f"render and transcribe (seed {seed})")):
            row = render_from_first_note(s, rng, list(PROGRAMS.values())[k % len(PROGRAMS)], Path(tmp) / f"p{k}.wav")
            if row is not None:
                out.append(row)
    cache.write_text(json.dumps(out))
    return out


def evidence(data: list[dict]) -> list[tuple]:
    """Per render: the evidence of every bar hypothesis, and which hypotheses are the true bar."""
    from tunesmith.music.audio import estimate_tempo
    from tunesmith.music.meter import choose_meter, meter_evidence

    out = []
    for row in data:
        notes = np.array(row["notes"], float)
        ev = meter_evidence(notes, estimate_tempo(np.unique(np.round(notes[:, 0], 3)), notes=notes))
        if ev is None:
            continue
        right = []
        for h in range(len(ev.hypotheses)):  # each hypothesis alone: a weight on it only
            one = replace(ev, terms=np.eye(len(ev.hypotheses))[:, [h]] @ np.eye(1, len(METER_WEIGHTS)))
            m = choose_meter(one, dict.fromkeys(METER_WEIGHTS, 1.0))
            right.append(same_bar(row, m.bar_seconds, m.downbeat_seconds))
        out.append((ev.terms, np.array(right)))
    return out


def accuracy(ev: list[tuple], w: np.ndarray) -> float:
    """The share of renders whose best hypothesis under weights ``w`` is the true bar."""
    return float(np.mean([right[int(np.argmax(terms @ w))] for terms, right in ev]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=150, help="per corpus and set")
    ap.add_argument("--samples", type=int, default=15000, help="random weightings tried")
    ap.add_argument("--collect-only", action="store_true")
    a = ap.parse_args()
    fit, check = collect(a.pieces, 1), collect(a.pieces, 2)
    if a.collect_only:
        return
    fit, check = evidence(fit), evidence(check)
    names = list(METER_WEIGHTS)
    # likelihood terms 0–2, the single places 0–2, the repeats 0–300, the priors ±15
    lo = np.array([0, 0, 0, 0, 0, 0, -15, -15], float)
    hi = np.array([2, 2, 2, 2, 300, 300, 15, 15], float)
    rng = np.random.default_rng(0)
    best_weightings((rng.uniform(lo, hi) for _ in range(a.samples)), fit, check, accuracy,
                    header="weights: fit set, second set (the bar's length and its downbeats right)",
                    show=lambda w: str(dict(zip(names, np.round(w, 2)))),
                    shipped=np.array(list(METER_WEIGHTS.values())), shipped_label=str(METER_WEIGHTS))


if __name__ == "__main__":
    main()
