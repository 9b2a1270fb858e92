"""A small note classifier (pitch and instrument family) trained here on the rendered
clips, used to evaluate generated notes without downloaded weights — the role the
NSynth pitch classifier plays in the GANSynth paper.

Input: an STFT (n_fft 4096 at 16 kHz) mapped to a log-frequency axis of third-of-a-
semitone bands (MIDI 24–108), averaged over four stretches of the clip (onset,
sustain, release): (4, 253). Network: three 1-D convolutions along frequency (a pitch
change is a shift there), a dense 32-d embedding (used for the Fréchet distance; small enough that
a hundred clips estimate its covariance),
then a pitch head and an instrument-family head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn


@dataclass
class ClassifierConfig:
    n_pitches: int = 49
    pitch_lo: int = 36
    families: list[int] = field(default_factory=lambda: [0, 3, 5, 9])  # GM families of the data set
    sample_rate: int = 16000
    n_fft: int = 4096
    hop: int = 1024
    bins_per_semitone: int = 3
    midi_lo: float = 24.0  # lowest and highest band centres of the log-frequency axis
    midi_hi: float = 108.0
    segments: int = 4  # the clip's spectrum averaged over this many stretches of time
    embed: int = 32

    def check(self) -> None:
        if not (1 <= self.n_pitches <= 128 and self.families and 4000 <= self.sample_rate <= 48000
                and 256 <= self.n_fft <= 16384 and 1 <= self.hop <= self.n_fft and 1 <= self.bins_per_semitone <= 12
                and 0 <= self.midi_lo < self.midi_hi <= 140 and 1 <= self.segments <= 64 and 1 <= self.embed <= 4096):
            raise ValueError(f"implausible sizes: {self}")


def log_frequency_bank(cfg: ClassifierConfig) -> torch.Tensor:
    """Triangular filters from STFT bins to bands spaced 1/bins_per_semitone semitone
    apart (a constant-Q-like axis on which a change of pitch is a shift): (bands, n_fft/2+1).
    Written here because it is a dozen lines and librosa's CQT is an order of
    magnitude slower than one STFT and a matrix product."""
    step = 1.0 / cfg.bins_per_semitone
    centres = np.arange(cfg.midi_lo, cfg.midi_hi + step / 2, step)
    hz = 440.0 * 2 ** ((np.concatenate([[centres[0] - step], centres, [centres[-1] + step]]) - 69) / 12)
    freqs = np.fft.rfftfreq(cfg.n_fft, 1 / cfg.sample_rate)
    w = np.zeros((len(centres), len(freqs)))
    for i in range(len(centres)):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        w[i] = np.clip(np.minimum(up, down), 0, None)
        if w[i].sum() == 0:  # narrower than an FFT bin at low frequencies: the nearest bin
            w[i, np.argmin(np.abs(freqs - c))] = 1.0
    return torch.tensor(w, dtype=torch.float32)


def spectrogram(x: torch.Tensor, cfg: ClassifierConfig, bank: torch.Tensor) -> torch.Tensor:
    """(B, L) audio → (B, segments, bands): log band energies averaged over stretches of time."""
    win = torch.hann_window(cfg.n_fft)
    s = torch.stft(x, cfg.n_fft, cfg.hop, window=win, return_complex=True).abs()  # (B, F, frames)
    bands = torch.log1p(100 * torch.einsum("kf,bft->bkt", bank, s))  # (B, bands, frames)
    segs = torch.tensor_split(bands, cfg.segments, dim=2)
    return torch.stack([t.mean(dim=2) for t in segs], dim=1)


class NoteClassifier(nn.Module):
    family = "note-classifier"

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("bank", log_frequency_bank(cfg), persistent=False)
        n_bands = self.bank.shape[0]
        self.conv = nn.Sequential(
            nn.Conv1d(cfg.segments, 32, 9, padding=4), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 32, 9, padding=12, dilation=3), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(3),
            nn.Conv1d(32, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32 * (n_bands // 3), cfg.embed), nn.ReLU())
        self.pitch = nn.Linear(cfg.embed, cfg.n_pitches)
        self.fam = nn.Linear(cfg.embed, len(cfg.families))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(spectrogram(x, self.cfg, self.bank)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self.embed(x)
        return self.pitch(e), self.fam(e), e

    @torch.no_grad()
    def predict(self, audio: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
        """Pitch probabilities (N, n_pitches), family probabilities, embeddings (N, embed)."""
        self.eval()
        outs = {"pitch": [], "family": [], "embedding": []}
        for i in range(0, len(audio), batch):
            p, f, e = self(torch.as_tensor(audio[i : i + batch], dtype=torch.float32))
            outs["pitch"].append(torch.softmax(p, -1).numpy())
            outs["family"].append(torch.softmax(f, -1).numpy())
            outs["embedding"].append(e.numpy())
        return {k: np.concatenate(v) if v else np.zeros((0, 1)) for k, v in outs.items()}
