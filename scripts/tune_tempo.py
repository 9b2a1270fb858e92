"""How the tempo estimate's weights (music/audio.py ``TEMPO_WEIGHTS``) were chosen.

Two sets of 120 pieces from the *train* splits of bach-chorales and folk (60 each, drawn
with different seeds; the benchmark, benchmarks/mir.py, uses held-out pieces) are rendered
with the SoundFont at 70–140 qpm on piano, strings, organ, flute and guitar and
transcribed (basic-pitch, refined onsets). Every weighting of a grid is scored by the share
of pieces whose estimate is within 4% of the rendered tempo, on the fitting set and on the
second set; the weighting with the best sum is printed.

    python scripts/tune_tempo.py [--pieces 60]

``--metrical``: the weight of the bar the notes make at each level of the tempo
(``METRICAL_WEIGHT``): two sets of train renders (150 and 300 pieces, half chorales and half
folk tunes, drawn with seeds 11 and 12) are transcribed, and each weight scored by the share
within 4% on each.

    python scripts/tune_tempo.py --metrical
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

PROGRAMS = {"piano": 0, "strings": 48, "organ": 19, "flute": 73, "guitar": 24}


def train_pieces(n_per_corpus: int, rng) -> list:
    """n_per_corpus pieces drawn by ``rng`` from each of the train splits of bach-chorales and folk."""
    from tunesmith.music.dataset import open_dataset

    pieces = []
    for corpus in ("bach-chorales", "folk"):
        ds = open_dataset(corpus, progress=False)
        train = ds.split("train")
        pick = rng.choice(len(train), min(len(train), n_per_corpus), replace=False)
        pieces += [ds.load(train[int(k)]) for k in pick]
    return pieces


def transcribed(n_per_corpus: int, seed: int):
    """(rendered qpm, transcribed notes as rows of start s, end s, pitch, amplitude) of
    n_per_corpus train pieces of each corpus, each rendered at a random tempo from 70 to 140 qpm on
    the next of :data:`PROGRAMS`."""
    import symusic
    from tqdm import tqdm

    from tunesmith.music.audio import basic_pitch_notes
    from tunesmith.music.render import render_wav

    rng = np.random.default_rng(seed)
    pieces = train_pieces(n_per_corpus, rng)
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(tqdm(pieces, desc=f"render and transcribe (seed {seed})")):
            qpm = float(rng.uniform(70, 140))
            s = s.copy()
            s.music.tempos.clear()
            s.music.tempos.append(symusic.Tempo(0, qpm))
            for tr in s.music.tracks:
                tr.program = list(PROGRAMS.values())[k % len(PROGRAMS)]
            wav = Path(tmp) / f"p{k}.wav"
            render_wav(s, wav, sample_rate=22050)
            yield qpm, np.array(basic_pitch_notes(wav), float).reshape(-1, 4)


def collect(n_per_corpus: int, seed: int) -> list[tuple[float, np.ndarray]]:
    """(rendered qpm, tempo evidence) of n_per_corpus train pieces of each corpus."""
    from tunesmith.music.audio import tempo_evidence

    return [(qpm, tempo_evidence(notes[:, 0])) for qpm, notes in transcribed(n_per_corpus, seed) if len(notes) >= 4]


def collect_notes(n_per_corpus: int, seed: int) -> list[tuple[float, np.ndarray]]:
    """(rendered qpm, transcribed notes) of n_per_corpus train pieces of each corpus."""
    return [(qpm, notes) for qpm, notes in transcribed(n_per_corpus, seed) if len(notes) >= 8]


def accuracy(data, w: np.ndarray) -> float:
    from tunesmith.music.audio import TEMPO_GRID

    return float(np.mean([abs(TEMPO_GRID[int(np.argmax(f @ w))] - q) / q <= 0.04 for q, f in data]))


def best_weightings(weightings, fit, check, accuracy, *, header: str, show, shipped: np.ndarray,
                    shipped_label: str) -> None:
    """Score every weighting on the fitting set and the second set with ``accuracy(set, w)``; print
    the eight with the best sum (ties in the order tried), each as ``show(w)``, and the shipped
    weights' figures. The tempo's and the meter's tuning scripts share it."""
    rows = []
    for w in weightings:
        a, b = accuracy(fit, w), accuracy(check, w)
        rows.append((a + b, a, b, w))
    rows.sort(key=lambda r: -r[0])
    print(header)
    for r in rows[:8]:
        print(f"  {show(r[3])}: {r[1]:.3f}, {r[2]:.3f}")
    print(f"the shipped weights {shipped_label}: {accuracy(fit, shipped):.3f}, {accuracy(check, shipped):.3f}")


def metrical() -> None:
    from tunesmith.music.audio import METRICAL_WEIGHT, estimate_tempo

    sets = [collect_notes(75, 11), collect_notes(150, 12)]

    def within(data, w):
        return float(np.mean([abs(estimate_tempo(np.unique(np.round(n[:, 0], 3)), notes=n, metrical_weight=w) / q - 1)
                              <= 0.04 for q, n in data]))

    print("metrical weight: within 4% on the two train sets")
    for w in (0, 0.002, 0.003, 0.005, 0.007, 0.01, 0.012, 0.015, 0.02, 0.025):
        print(f"  {w:g}: " + ", ".join(f"{within(d, w):.3f}" for d in sets) + ("  (shipped)" if w == METRICAL_WEIGHT else ""))


def main() -> None:
    from tunesmith.music.audio import TEMPO_WEIGHTS

    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=60, help="per corpus and set")
    ap.add_argument("--metrical", action="store_true", help="choose the metrical weight instead")
    a = ap.parse_args()
    if a.metrical:
        metrical()
        return
    fit, check = collect(a.pieces, 1), collect(a.pieces, 2)
    grid = (np.array(w, float) for w in itertools.product([2, 3, 4, 6], [0, 0.5, 1, 2], [0, 0.25, 0.5, 1],
                                                           [1, 2, 3, 4, 6]))
    now = np.array(list(TEMPO_WEIGHTS.values()))
    best_weightings(grid, fit, check, accuracy,
                    header="weights (eighth grid, quarter grid, note values, tempo prior): fit set, second set",
                    show=lambda w: str(tuple(float(x) for x in w)), shipped=now,
                    shipped_label=str(tuple(float(x) for x in now)))


if __name__ == "__main__":
    main()
