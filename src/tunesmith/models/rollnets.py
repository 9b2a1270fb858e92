"""The convolutional and adversarial models over four-voice piano rolls.

- :class:`Coconet`: Huang et al., "Counterpoint by convolution" (ISMIR 2017). A
  convolutional network over the (time × pitch) image of the four voices, given the
  known notes and a mask of the unknown cells, predicting a softmax over pitch (or
  rest) for each voice at each sixteenth step. Trained on random masks, sampled by
  annealed blocked Gibbs sampling. Ours: dilated residual 3×3 convolutions (dilation
  1, 2, 4, 8 repeated, so 12 layers see ±90 steps and ±90 pitches) instead of the
  paper's 64 undilated layers, to train on a CPU.
- :class:`RollGAN`: after MuseGAN (Dong et al., AAAI 2018). The generator maps a
  shared latent (all voices) and a private latent per voice through transposed 3-D
  convolutions over (bar, step, pitch) to a multi-track 4-bar piano roll; the
  critic is a stack of factorised strided convolutions. Trained as a WGAN-GP
  (Gulrajani et al. 2017). Each voice's output is a distribution over pitches per
  step (the voices of a chorale are monophonic); for playback it is binarised: the
  likeliest pitch where its probability passes the threshold, else a rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tunesmith.progress import report
from tunesmith.represent.voices import N_CLASSES, N_VOICES

# --------------------------------------------------------------------------- Coconet


@dataclass
class CoconetConfig:
    n_voices: int = N_VOICES
    n_classes: int = N_CLASSES
    channels: int = 48
    n_layer: int = 12
    crop: int = 32  # training crop in sixteenth steps (2 bars of 4/4)

    def check(self) -> None:
        if not (1 <= self.n_voices <= 16 and 2 <= self.n_classes <= 256 and 1 <= self.channels <= 1024
                and 1 <= self.n_layer <= 128 and 1 <= self.crop <= 4096):
            raise ValueError(f"implausible sizes: {self}")


class _Block(nn.Module):
    def __init__(self, c: int, dilation: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.relu(self.bn1(x)))
        h = self.conv2(F.relu(self.bn2(h)))
        return x + h


class Coconet(nn.Module):
    family = "cnn"

    def __init__(self, cfg: CoconetConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.inp = nn.Conv2d(2 * cfg.n_voices, c, 3, padding=1)
        dil = [1, 2, 4, 8]
        self.blocks = nn.ModuleList(_Block(c, dil[i % 4]) for i in range(cfg.n_layer // 2))
        self.norm = nn.BatchNorm2d(c)
        self.out = nn.Conv2d(c, cfg.n_voices, 3, padding=1)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, V, T) classes, ``mask`` (B, V, T) bool, True where unknown →
        logits (B, V, T, n_classes). Masked cells of ``x`` are never looked at."""
        onehot = F.one_hot(x.clamp(min=0), self.cfg.n_classes).float() * (~mask).unsqueeze(-1)
        m = mask.float().unsqueeze(-1).expand_as(onehot)
        h = torch.cat([onehot, m], dim=1)  # (B, 2V, T, C): an image with 2V channels
        h = self.inp(h)
        for b in self.blocks:
            h = b(h)
        return self.out(F.relu(self.norm(h)))

    def loss(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) over the masked cells."""
        logits = self(x, mask)
        ce = F.cross_entropy(logits.permute(0, 3, 1, 2), x, reduction="none")
        return (ce * mask).sum() / mask.sum().clamp(min=1)


def random_masks(B: int, V: int, T: int, g: torch.Generator) -> torch.Tensor:
    """Training masks (True = hidden), a mixture of the tasks the model is used for:
    Coconet's orderless masks (a uniform share of cells, 50%), whole voices (harmonizing,
    20%), a time span of some voices (infilling, 20%), everything (generating, 10%)."""
    masks = torch.zeros(B, V, T, dtype=torch.bool)
    kind = torch.rand(B, generator=g)
    for b in range(B):
        k = float(kind[b])
        if k < 0.5:
            rate = float(torch.rand(1, generator=g))
            masks[b] = torch.rand(V, T, generator=g) < rate
        elif k < 0.7:
            n = int(torch.randint(1, V, (1,), generator=g))
            vs = torch.randperm(V, generator=g)[:n]
            masks[b, vs] = True
        elif k < 0.9:
            span = int(torch.randint(4, max(5, T // 2 + 1), (1,), generator=g))
            a = int(torch.randint(0, max(1, T - span + 1), (1,), generator=g))
            vs = torch.rand(V, generator=g) < 0.6
            if not vs.any():
                vs[int(torch.randint(0, V, (1,), generator=g))] = True
            masks[b, vs, a : a + span] = True
        else:
            masks[b] = True
        if not masks[b].any():
            masks[b, int(torch.randint(0, V, (1,), generator=g)), int(torch.randint(0, T, (1,), generator=g))] = True
    return masks


@torch.no_grad()
def gibbs_sample(model: Coconet, x: torch.Tensor, free: torch.Tensor, *, iterations: int = 96,
                 temperature: float = 1.0, alpha_max: float = 0.9, alpha_min: float = 0.05, eta: float = 0.75,
                 seed: int = 0, adjust=None) -> torch.Tensor:
    """Coconet's annealed blocked Gibbs sampler. ``x`` (B, V, T) with the known cells
    set, ``free`` (B, V, T) bool: the cells to write. First every free cell is drawn
    from the model given the known ones; then, for ``iterations`` rounds, a random share
    α of the free cells (α annealed linearly from ``alpha_max`` to ``alpha_min`` over the
    first ``eta`` of the rounds) is hidden and redrawn given the rest. ``adjust(x, mask,
    logits) → logits``, when given, reshapes every round's distribution (the rule layer)."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    x = x.clone()
    mask = free.clone()
    for n in range(iterations + 1):
        report(n, iterations + 1, "Gibbs rounds")
        if n > 0:
            alpha = max(alpha_min, alpha_max - n * (alpha_max - alpha_min) / max(1.0, eta * iterations))
            mask = free & (torch.rand(free.shape, generator=g) < alpha)
            if not mask.any():
                continue
        logits = model(x, mask) / max(temperature, 1e-4)
        if adjust is not None:
            logits = adjust(x, mask, logits)
        probs = torch.softmax(logits, dim=-1)
        draw = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=g).reshape(x.shape)
        x = torch.where(mask, draw, x)
    return x


@torch.no_grad()
def ordered_nll(model: Coconet, x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Exact −log p(x) under one random ordering of the cells (chain rule: each cell
    predicted from the cells before it in the ordering, all later cells hidden), per
    crop in nats: (B,). One forward pass per cell, crops processed together."""
    model.eval()
    B, V, T = x.shape
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(V * T, generator=g) for _ in range(B)])  # (B, VT)
    mask = torch.ones(B, V * T, dtype=torch.bool)
    total = torch.zeros(B)
    rows = torch.arange(B)
    for k in range(V * T):
        cell = order[:, k]
        logits = model(x, mask.view(B, V, T)).reshape(B, V * T, -1)
        lp = torch.log_softmax(logits[rows, cell], dim=-1)
        total -= lp[rows, x.reshape(B, -1)[rows, cell]]
        mask[rows, cell] = False
    return total


# --------------------------------------------------------------------------- MuseGAN-style GAN


@dataclass
class GanConfig:
    n_tracks: int = N_VOICES
    n_bars: int = 4
    steps_per_bar: int = 16
    n_pitches: int = 48  # four octaves from PITCH_LO
    z_shared: int = 64
    z_private: int = 32
    g_channels: int = 256
    d_channels: int = 128

    def check(self) -> None:
        if not (1 <= self.n_tracks <= 16 and 1 <= self.n_bars <= 64 and 1 <= self.steps_per_bar <= 96
                and 1 <= self.n_pitches <= 128 and 1 <= self.z_shared <= 4096 and 1 <= self.z_private <= 4096
                and 1 <= self.g_channels <= 4096 and 1 <= self.d_channels <= 4096):
            raise ValueError(f"implausible sizes: {self}")


class Generator(nn.Module):
    """(z_shared, z_private per track) → (B, tracks, bars, steps, pitches), a distribution
    over pitches for each track and step.

    The (bar, step) axes are one time axis of bars × steps (bar-major), so the
    factorised 3-D convolutions of MuseGAN are written as 2-D ones over (time, pitch),
    which PyTorch runs much faster on a CPU (also through the critic's double backward)."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.g_channels
        self.track_emb = nn.Embedding(cfg.n_tracks, 16)
        self.fc = nn.Linear(cfg.z_shared + cfg.z_private + 16, c * cfg.n_bars)
        self.bn0 = nn.BatchNorm2d(c)
        octaves = cfg.n_pitches // 12
        steps = cfg.steps_per_bar
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, (4, 1), (4, 1)), nn.BatchNorm2d(c // 2), nn.ReLU(),
            nn.ConvTranspose2d(c // 2, c // 4, (steps // 4, 1), (steps // 4, 1)), nn.BatchNorm2d(c // 4), nn.ReLU(),
            nn.ConvTranspose2d(c // 4, c // 8, (1, octaves), (1, octaves)), nn.BatchNorm2d(c // 8), nn.ReLU(),
            nn.ConvTranspose2d(c // 8, 1, (1, 12), (1, 12)),  # pitch = 12·octave + pitch class
        )

    def forward(self, z_shared: torch.Tensor, z_private: torch.Tensor) -> torch.Tensor:
        B, K = z_private.shape[0], self.cfg.n_tracks
        tid = torch.arange(K, device=z_shared.device).repeat(B)
        h = torch.cat([z_shared.repeat_interleave(K, 0), z_private.reshape(B * K, -1), self.track_emb(tid)], dim=1)
        h = self.fc(h).view(B * K, self.cfg.g_channels, self.cfg.n_bars, 1)
        h = F.relu(self.bn0(h))
        # Each voice sings one pitch at a time: a softmax over pitch per voice and step, so
        # the critic compares distributions over pitches with the one-hot real rolls
        # (with independent sigmoids it learns to tell soft outputs from binary data instead).
        out = torch.softmax(self.net(h), dim=-1)  # (B·K, 1, bars·steps, pitches)
        return out.view(B, K, self.cfg.n_bars, self.cfg.steps_per_bar, self.cfg.n_pitches)


class Critic(nn.Module):
    """(B, tracks, bars, steps, pitches) → a score per sample (WGAN critic, no batch norm):
    a pitch stream (within an octave, then across octaves), a pitch-class stream (all
    octaves folded), then strided convolutions over time (beats, bars, pairs of bars)."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        c = cfg.d_channels
        octaves = cfg.n_pitches // 12
        act = nn.LeakyReLU(0.2)
        self.pitch = nn.Sequential(
            nn.Conv2d(cfg.n_tracks, c // 2, (1, 12), (1, 12)), act,
            nn.Conv2d(c // 2, c, (1, octaves), (1, octaves)), act,
        )
        self.chroma = nn.Sequential(nn.Conv2d(cfg.n_tracks, c // 2, (1, 12)), act)
        self.time = nn.Sequential(
            nn.Conv2d(c + c // 2, c, (4, 1), (4, 1)), act,
            nn.Conv2d(c, 2 * c, (cfg.steps_per_bar // 4, 1), (cfg.steps_per_bar // 4, 1)), act,
            nn.Conv2d(2 * c, 2 * c, (2, 1)), act,
        )
        self.fc = nn.Linear(2 * c * (cfg.n_bars - 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, K, nb, st, P = x.shape
        x = x.reshape(B, K, nb * st, P)
        chroma = x.view(B, K, nb * st, P // 12, 12).sum(3)
        h = torch.cat([self.pitch(x), self.chroma(chroma)], dim=1)  # (B, 1.5c, time, 1)
        return self.fc(self.time(h).reshape(B, -1)).squeeze(-1)


class RollGAN(nn.Module):
    family = "gan"

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        self.G = Generator(cfg)
        self.D = Critic(cfg)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def sample_latents(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randn(n, self.cfg.z_shared, generator=g),
                torch.randn(n, self.cfg.n_tracks, self.cfg.z_private, generator=g))


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP: E[(‖∇D(x̂)‖ − 1)²] on random interpolates x̂ of real and fake."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=g).to(real.device)
    xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
    return ((grad.reshape(grad.shape[0], -1).norm(dim=1) - 1) ** 2).mean()


def to_gan_roll(x: torch.Tensor, cfg: GanConfig) -> torch.Tensor:
    """(B, 4, bars·steps) classes → (B, 4, bars, steps, pitches) binary."""
    B, V, T = x.shape
    roll = torch.zeros(B, V, T, cfg.n_pitches)
    idx = (x - 1).clamp(0, cfg.n_pitches - 1)
    roll.scatter_(3, idx.unsqueeze(-1), (x > 0).float().unsqueeze(-1))
    return roll.view(B, V, cfg.n_bars, cfg.steps_per_bar, cfg.n_pitches)


def gan_roll_to_classes(roll: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, 4, bars, steps, pitches) probabilities → (B, 4, T) classes: the likeliest pitch
    of each voice at each step, a rest where none passes ``threshold`` (binarisation)."""
    B, V, nb, st, P = roll.shape
    r = roll.reshape(B, V, nb * st, P)
    p, i = r.max(dim=-1)
    return torch.where(p >= threshold, i + 1, torch.zeros_like(i))
