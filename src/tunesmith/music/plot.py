"""Piano-roll pictures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from tunesmith.music.score import Score  # noqa: E402


def save_pianoroll_png(score: Score, path: str | Path, *, title: str | None = None) -> Path:
    """Draw every note as a bar (x: quarter notes, y: MIDI pitch), one colour per track."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tpq = score.tpq
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    lo, hi = 127, 0
    for i, tr in enumerate(score.music.tracks):
        if not len(tr.notes):
            continue
        n = tr.notes.numpy()
        t0 = n["time"] / tpq
        d = n["duration"] / tpq
        pitch = n["pitch"].astype(float)
        verts = [[(a, y - 0.4), (a + b, y - 0.4), (a + b, y + 0.4), (a, y + 0.4)] for a, b, y in zip(t0, d, pitch)]
        ax.add_collection(PolyCollection(verts, facecolors=cmap(i % 10), edgecolors="none",
                                         label=tr.name or f"track {i + 1}"))
        lo, hi = min(lo, int(pitch.min())), max(hi, int(pitch.max()))
    end = max(score.end_tick / tpq, 1.0)
    ax.set_xlim(0, end)
    ax.set_ylim((lo - 2, hi + 2) if hi >= lo else (48, 84))
    ts = score.music.time_signatures
    if len(ts):  # bar lines from the first time signature
        bar = ts[0].numerator * 4 / ts[0].denominator
        x = ts[0].time / tpq
        while x <= end:
            ax.axvline(x, color="0.85", lw=0.6, zorder=0)
            x += bar
    ax.set_xlabel("time (quarter notes)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or score.meta.title or "piano roll")
    if score.n_tracks > 1:
        ax.legend(loc="upper right", fontsize=8, ncol=min(4, score.n_tracks))
    fig.tight_layout()
    tmp = p.with_name(p.stem + ".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, p)
    return p
