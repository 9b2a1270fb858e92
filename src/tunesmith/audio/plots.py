"""Pictures of notes: spectrograms side by side, generated beside real."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
    tmp = path.with_suffix(".part.png")
    fig.savefig(tmp, dpi=70)
    plt.close(fig)
    tmp.replace(path)
    return path


def save_comparison(fake, real, gan, path: Path) -> Path:
    """Spectrograms of one generated note beside the real note of the same pitch,
    instrument and velocity, for two pitches of every instrument."""
    clips, titles = [], []
    for prog in gan.programs:
        rows = [k for k in range(len(real.audio)) if int(real.program[k]) == prog][:2]
        for k in rows:
            clips += [fake[k], real.audio[k]]
            titles += [f"generated: program {prog}, pitch {real.pitch[k]}", f"real: program {prog}, pitch {real.pitch[k]}"]
    return save_spectrograms(np.asarray(clips), titles, path, gan.sample_rate)
