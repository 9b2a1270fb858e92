"""WaveGAN (Donahue, McAuley & Puckette, ICLR 2019) with pitch and instrument conditioning.

Generator: latent z (and one-hot pitch and instrument) → dense → (16·d channels × 16
samples) → five transposed 1-D convolutions (kernel 25, stride 4; ReLU) → tanh: 16384
samples. Critic: the mirror, five strided 1-D convolutions (kernel 25, stride 4) with
leaky ReLU (0.2) and phase shuffle (±2 samples) between them, then a projection head
for the conditioning (Miyato & Koyama 2018): D(x, y) = w·φ(x) + Σ_c ⟨e_c(y_c), φ(x)⟩.
Trained as a WGAN-GP. ``d`` is the width multiplier: WaveGAN's paper uses 64; the
default here (8) trains on two CPU cores, 32–64 suit a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class WaveGANConfig:
    n_pitches: int = 49  # MIDI 36..84
    pitch_lo: int = 36
    n_instruments: int = 4
    z_dim: int = 100
    d: int = 8  # width multiplier
    length: int = 16384
    phase_shuffle: int = 2
    sample_rate: int = 16000

    def check(self) -> None:
        if not (1 <= self.n_pitches <= 128 and 1 <= self.n_instruments <= 128 and 1 <= self.z_dim <= 4096
                and 1 <= self.d <= 128 and 1024 <= self.length <= 10 * self.sample_rate
                and self.length % 1024 == 0 and 0 <= self.phase_shuffle <= 64 and 4000 <= self.sample_rate <= 48000):
            raise ValueError(f"implausible sizes: {self}")


def phase_shuffle(x: torch.Tensor, n: int, g: torch.Generator | None = None) -> torch.Tensor:
    """Shift each example in time by a random k in [−n, n], filling by reflection
    (WaveGAN's phase shuffle, so the critic cannot key on the generator's phase)."""
    if n <= 0:
        return x
    B, C, T = x.shape
    ks = torch.randint(-n, n + 1, (B,), generator=g)
    padded = F.pad(x, (n, n), mode="reflect")  # (B, C, T + 2n)
    # sample b reads padded[..., n - k_b : n - k_b + T]: a shift right by k_b, reflected at the edge
    idx = (torch.arange(T).unsqueeze(0) + (n - ks).unsqueeze(1)).unsqueeze(1).expand(B, C, T).to(x.device)
    return torch.gather(padded, 2, idx)


class WaveGenerator(nn.Module):
    def __init__(self, cfg: WaveGANConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.start = cfg.length // 4**5
        self.fc = nn.Linear(cfg.z_dim + cfg.n_pitches + cfg.n_instruments, 16 * d * self.start)
        chans = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
        self.convs = nn.ModuleList(
            nn.ConvTranspose1d(chans[i], chans[i + 1], 25, stride=4, padding=11, output_padding=1) for i in range(5))

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim), pitch (B,) index, inst (B,) index → (B, length) in [−1, 1]."""
        c = torch.cat([z, F.one_hot(pitch, self.cfg.n_pitches).float(), F.one_hot(inst, self.cfg.n_instruments).float()], 1)
        h = F.relu(self.fc(c)).view(z.shape[0], 16 * self.cfg.d, self.start)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            h = torch.tanh(h) if i == 4 else F.relu(h)
        return h.squeeze(1)


class WaveCritic(nn.Module):
    def __init__(self, cfg: WaveGANConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        chans = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList(nn.Conv1d(chans[i], chans[i + 1], 25, stride=4, padding=11) for i in range(5))
        feat = 16 * d * (cfg.length // 4**5)
        self.out = nn.Linear(feat, 1)
        self.embed_pitch = nn.Embedding(cfg.n_pitches, feat)
        self.embed_inst = nn.Embedding(cfg.n_instruments, feat)
        nn.init.normal_(self.embed_pitch.weight, std=0.01)
        nn.init.normal_(self.embed_inst.weight, std=0.01)

    def features(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        h = x.unsqueeze(1)
        for i, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h), 0.2)
            if i < 4:
                h = phase_shuffle(h, self.cfg.phase_shuffle, g)
        return h.flatten(1)

    def forward(self, x: torch.Tensor, pitch: torch.Tensor, inst: torch.Tensor,
                g: torch.Generator | None = None) -> torch.Tensor:
        f = self.features(x, g)
        proj = (self.embed_pitch(pitch) * f).sum(1) + (self.embed_inst(inst) * f).sum(1)
        return self.out(f).squeeze(1) + proj


class WaveGAN(nn.Module):
    family = "wavegan"

    def __init__(self, cfg: WaveGANConfig):
        super().__init__()
        self.cfg = cfg
        self.G = WaveGenerator(cfg)
        self.D = WaveCritic(cfg)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def sample(self, pitch: torch.Tensor, inst: torch.Tensor, velocity: torch.Tensor, g: torch.Generator,
               *, hold: float | None = None, length: int | None = None) -> torch.Tensor:
        """Notes (B, length) for MIDI pitches, instrument indices and velocities. WaveGAN is
        not conditioned on velocity or note length: it makes one fixed-length clip, and
        the caller refuses those controls (``hold``/``length`` must be left unset)."""
        if hold is not None or length is not None:
            raise ValueError("WaveGAN makes fixed-length clips")
        z = torch.randn(len(pitch), self.cfg.z_dim, generator=g)
        return self.G(z, pitch.long() - self.cfg.pitch_lo, inst.long())


def receptive_field(kernel: int = 25, stride: int = 4, layers: int = 5) -> int:
    """Input samples seen by one output of a stack of strided convolutions."""
    rf = 1
    for _ in range(layers):
        rf = rf * stride + (kernel - stride)
    return rf


def wave_gradient_penalty(D: WaveCritic, real, fake, pitch, inst, g=None) -> torch.Tensor:
    eps = torch.rand(real.shape[0], 1, generator=g).to(real.device)
    xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(xh, pitch, inst, g).sum(), xh, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()
