"""Piano-roll pictures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from tunesmith.music.score import Score  # noqa: E402


def draw_pianoroll(ax, score: Score) -> float:
    """Draw every note of ``score`` on ``ax`` as a bar (x: quarter notes, y: MIDI pitch), one colour
    per track, with bar lines; returns the end in quarter notes."""
    tpq = score.tpq
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
    if len(ts) and ts[0].numerator > 0 and ts[0].denominator > 0:  # bar lines from the first time signature
        bar = ts[0].numerator * 4 / ts[0].denominator
        lines = np.arange(ts[0].time / tpq, end + 1e-9, bar)
        if len(lines) <= 2000:  # a meter that would draw more lines than pixels draws none (and never loops)
            for x in lines:
                ax.axvline(x, color="0.85", lw=0.6, zorder=0)
    ax.set_ylabel("MIDI pitch")
    if score.n_tracks > 1:
        ax.legend(loc="upper right", fontsize=8, ncol=min(4, score.n_tracks))
    return end


def save_figure(fig, path: str | Path, *, dpi: float | None = None) -> Path:
    """Write a matplotlib figure as PNG through a fresh temporary file, then close it."""
    from tunesmith.fileio import fresh_temporary

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = fresh_temporary(p, ".part.png")
    with os.fdopen(fd, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)
    os.replace(tmp, p)
    return p


def save_pianoroll_png(score: Score, path: str | Path, *, title: str | None = None) -> Path:
    """The piano roll of a piece as a PNG."""
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    draw_pianoroll(ax, score)
    ax.set_xlabel("time (quarter notes)")
    ax.set_title(title or score.meta.title or "piano roll")
    fig.tight_layout()
    return save_figure(fig, path)


def save_spectrograms(clips: np.ndarray, titles: list[str], path: Path, sample_rate: int) -> Path:
    """Log-magnitude spectrograms of clips side by side, as a PNG (atomic)."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(clips)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax, c, t in zip(axes.ravel(), clips, titles):
        s = librosa.amplitude_to_db(np.abs(librosa.stft(c.astype(np.float32), n_fft=512, hop_length=128)) + 1e-6,
                                    ref=1.0)
        ax.imshow(s, origin="lower", aspect="auto", vmin=-80, vmax=20, cmap="magma",
                  extent=[0, len(c) / sample_rate, 0, sample_rate / 2000])
        ax.set_title(t, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("kHz", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)
