"""A note GAN that gets pitch right by construction: a DDSP generator (Engel et al.,
ICLR 2020) trained against waveform and spectrogram critics (as MelGAN / HiFi-GAN /
UnivNet train their vocoders).

Generator
    A control network maps (pitch, instrument, velocity, latent z) and a per-frame gate
    (1 while the key is held, 0 after release) through a GRU to, at every frame
    (``hop`` samples): an overall amplitude, a distribution over ``n_harmonics``
    harmonics of the asked fundamental, and the gains of ``n_bands`` noise bands.
    A harmonic synthesizer sums sinusoids at exact multiples of the asked pitch's
    frequency (harmonics at or above Nyquist are masked), with amplitudes linearly
    interpolated between frames; a filtered-noise synthesizer shapes white noise in the
    STFT domain (Hann window, hop = n_fft / 2, so unfiltered noise is reconstructed
    exactly). The network chooses timbre and envelope; it cannot choose the pitch.
    Because the GRU runs frame by frame on the gate, a note can be any length:
    ``duration`` seconds held, then the release the model learned.

Critics
    - multi-scale waveform critics (MelGAN): the same small strided, grouped 1-D
      convolution stack on the waveform at 16, 8 and 4 kHz;
    - multi-resolution spectrogram critics (UnivNet): 2-D convolutions over log
      magnitudes at n_fft 256, 1024 and 2048;
    each with a projection head for (pitch, instrument) (Miyato & Koyama 2018).

Training (``tunesmith audio train --family ddsp-gan``): least-squares GAN losses
(Mao et al. 2017) on every critic, feature matching, and a multi-resolution STFT loss
between the z = 0 note and the real note of the same pitch, instrument and velocity
(the "mode"), while random-z notes only have to fool the critics; a capped
mode-seeking term (Mao et al. 2019) keeps z audible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

MAX_HARMONICS = 256
MAX_HIDDEN = 1024


@dataclass
class DDSPGANConfig:
    n_pitches: int = 49  # MIDI 36..84: the pitches the control network was trained on
    pitch_lo: int = 36
    n_instruments: int = 4
    z_dim: int = 16
    hidden: int = 192
    n_harmonics: int = 96
    n_bands: int = 65
    hop: int = 128
    length: int = 16384  # samples of a training clip
    hold: float = 0.75  # seconds the key is held in a training clip
    sample_rate: int = 16000
    critic_width: int = 8
    # the spread of z when sampling (the truncation trick of BigGAN, Brock et al. 2019):
    # chosen after training on the training notes, saved with the model
    latent_scale: float = 1.0

    def check(self) -> None:
        """Refuse sizes that would allocate absurd amounts before anything is built."""
        if not (1 <= self.n_harmonics <= MAX_HARMONICS and 1 <= self.hidden <= MAX_HIDDEN
                and 2 <= self.n_bands <= 513 and 16 <= self.hop <= 1024 and 1 <= self.z_dim <= 512
                and 1 <= self.n_pitches <= 128 and 1 <= self.n_instruments <= 128 and 1 <= self.critic_width <= 256
                and self.length % self.hop == 0 and 4000 <= self.sample_rate <= 48000
                and 0 <= self.latent_scale <= 4):
            raise ValueError(f"implausible ddsp-gan sizes: {self}")


def pitch_hz(midi: torch.Tensor) -> torch.Tensor:
    return 440.0 * 2 ** ((midi - 69.0) / 12.0)


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7):
    """DDSP's positive nonlinearity: smooth, with a useful range of several decades."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def harmonic_synth(f0: torch.Tensor, amps: torch.Tensor, hop: int, sample_rate: int) -> torch.Tensor:
    """f0 (B,) in Hz, amps (B, frames + 1, K) at frame boundaries → (B, frames · hop).

    Amplitudes are linearly interpolated between frame boundaries; harmonic k is
    sin(2π k f0 t). With a constant f0 the sine at t = t_f + τ (frame start t_f, offset
    τ < hop) splits by the angle-addition formula into sin(k ω t_f)·cos(k ω τ) +
    cos(k ω t_f)·sin(k ω τ): per-frame coefficients (B, frames, K) times per-offset
    bases (B, K, hop). So the synthesis is four batched matrix products and never
    builds a (B, K, samples) tensor — about 15× faster than summing sinusoids sample by
    sample on a CPU, and exact (tested against the direct sum)."""
    B, n1, K = amps.shape
    frames = n1 - 1
    k = torch.arange(1, K + 1, dtype=torch.float64)
    w = 2 * math.pi * f0.double()[:, None] * k[None, :] / sample_rate  # (B, K) radians per sample
    start = w[:, None, :] * (torch.arange(frames, dtype=torch.float64) * hop)[None, :, None]  # (B, frames, K)
    start = torch.remainder(start, 2 * math.pi)
    s0, c0 = torch.sin(start).float(), torch.cos(start).float()
    tau = w[:, :, None] * torch.arange(hop, dtype=torch.float64)[None, None, :]  # (B, K, hop)
    sin_tau, cos_tau = torch.sin(tau).float(), torch.cos(tau).float()
    alpha = torch.arange(hop, dtype=torch.float32) / hop  # (hop,)

    def frame_sum(a: torch.Tensor) -> torch.Tensor:  # a (B, frames, K) → (B, frames, hop)
        return torch.bmm(a * s0, cos_tau) + torch.bmm(a * c0, sin_tau)

    y = frame_sum(amps[:, :-1]) * (1 - alpha) + frame_sum(amps[:, 1:]) * alpha
    return y.reshape(B, frames * hop)


def noise_synth(noise: torch.Tensor, gains: torch.Tensor, hop: int) -> torch.Tensor:
    """White noise (B, L) shaped by band gains (B, frames + 1, n_bands) in the STFT
    domain (n_fft = 2 · hop, Hann window): gains are interpolated linearly over the
    STFT's frequency bins."""
    n_fft = 2 * hop
    win = torch.hann_window(n_fft)
    spec = torch.stft(noise, n_fft, hop, window=win, return_complex=True)  # (B, n_fft/2+1, frames + 1)
    g = F.interpolate(gains, size=spec.shape[1], mode="linear", align_corners=True).transpose(1, 2)  # (B, bins, F+1)
    if g.shape[2] != spec.shape[2]:
        raise ValueError(f"{gains.shape[1]} noise frames for an STFT of {spec.shape[2]}")
    return torch.istft(spec * g, n_fft, hop, window=win, length=noise.shape[1])


class ControlNet(nn.Module):
    """(pitch, instrument, velocity, z, gate per frame) → synthesizer controls per frame."""

    def __init__(self, cfg: DDSPGANConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.n_fourier = 6
        self.pitch_embed = nn.Embedding(cfg.n_pitches, 16)
        self.inst_embed = nn.Embedding(cfg.n_instruments, 32)
        n_in = 1 + 2 * self.n_fourier + 16 + 32 + 2 + cfg.z_dim
        self.note = nn.Sequential(nn.Linear(n_in, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2))
        self.h0 = nn.Linear(h, h)
        self.gru = nn.GRU(h + 3, h, batch_first=True)
        self.out = nn.Sequential(nn.Linear(2 * h + 3, h), nn.LeakyReLU(0.2),
                                 nn.Linear(h, 1 + cfg.n_harmonics + cfg.n_bands))

    def note_vector(self, pitch: torch.Tensor, inst: torch.Tensor, velocity: torch.Tensor,
                    z: torch.Tensor) -> torch.Tensor:
        """pitch: MIDI (float, any value: the embedding uses the nearest trained pitch);
        inst: index; velocity: 1–127; z: (B, z_dim)."""
        cfg = self.cfg
        p = (pitch - (cfg.pitch_lo + (cfg.n_pitches - 1) / 2)) / 24.0
        freqs = 2.0 ** torch.arange(self.n_fourier, dtype=torch.float32)
        four = torch.cat([torch.sin(math.pi * p[:, None] * freqs), torch.cos(math.pi * p[:, None] * freqs)], 1)
        idx = (pitch.round().long() - cfg.pitch_lo).clamp(0, cfg.n_pitches - 1)
        v = velocity / 127.0
        feats = torch.cat([p[:, None], four, self.pitch_embed(idx), self.inst_embed(inst),
                           v[:, None], torch.log(v.clamp_min(1e-3))[:, None], z], 1)
        return self.note(feats)

    def forward(self, c: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """c (B, h), gate (B, T) → (B, T, 1 + K + n_bands) raw controls."""
        B, T = gate.shape
        onset = torch.zeros_like(gate)
        onset[:, 0] = 1
        released = (1 - gate) * (torch.cumsum(gate, 1) > 0).float()
        frame_in = torch.stack([gate, onset, released], 2)
        x = torch.cat([c[:, None, :].expand(B, T, c.shape[1]), frame_in], 2)
        h, _ = self.gru(x, torch.tanh(self.h0(c))[None])
        return self.out(torch.cat([h, x[:, :, : c.shape[1]], frame_in], 2))


class DDSPGenerator(nn.Module):
    def __init__(self, cfg: DDSPGANConfig):
        super().__init__()
        self.cfg = cfg
        self.control = ControlNet(cfg)

    def gate(self, batch: int, seconds: float | torch.Tensor, total_samples: int) -> torch.Tensor:
        """(batch, frames + 1): 1 at frame boundaries while the key is held (``seconds``:
        one for all or one per note), else 0."""
        cfg = self.cfg
        n = total_samples // cfg.hop + 1
        sec = torch.as_tensor(seconds, dtype=torch.float32).reshape(-1, 1).expand(batch, 1)
        held = (torch.arange(n, dtype=torch.float32) * cfg.hop)[None, :] < sec * cfg.sample_rate
        return held.float().contiguous()

    def controls(self, pitch, inst, velocity, z, gate):
        cfg = self.cfg
        # the timbre of the nearest trained pitch; the frequency stays the asked one
        trained = pitch.clamp(cfg.pitch_lo, cfg.pitch_lo + cfg.n_pitches - 1)
        raw = self.control(self.control.note_vector(trained, inst, velocity, z), gate)
        amp = exp_sigmoid(raw[:, :, :1])
        f0 = pitch_hz(pitch)
        k = torch.arange(1, cfg.n_harmonics + 1, dtype=torch.float32)
        audible = (f0[:, None] * k[None, :]) < cfg.sample_rate / 2  # (B, K)
        logits = raw[:, :, 1 : 1 + cfg.n_harmonics].masked_fill(~audible[:, None, :], -1e9)
        harm = amp * torch.softmax(logits, -1)
        noise = exp_sigmoid(raw[:, :, 1 + cfg.n_harmonics :] - 5.0)
        return f0, harm, noise

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, inst: torch.Tensor, velocity: torch.Tensor, *,
                hold: float | torch.Tensor | None = None, length: int | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z_dim), pitch (B,) MIDI, inst (B,) index, velocity (B,) 1–127 → (B, length).

        ``hold`` seconds of key-down (default: the training clips'), ``length`` samples in
        all (default: the training clips'; rounded up to a whole number of frames, then
        cut); ``noise`` (B, ≥ length) white noise for the noise synthesizer (default: drawn
        from torch's global generator)."""
        cfg = self.cfg
        hold = cfg.hold if hold is None else hold
        length = cfg.length if length is None else length
        total = -(-length // cfg.hop) * cfg.hop
        B = z.shape[0]
        pitch = pitch.float()
        velocity = velocity.float()
        f0, harm, gains = self.controls(pitch, inst, velocity, z, self.gate(B, hold, total))
        if noise is None:
            noise = torch.randn(B, total)
        elif noise.shape[1] < total:
            noise = F.pad(noise, (0, total - noise.shape[1]))
        y = harmonic_synth(f0, harm, cfg.hop, cfg.sample_rate) + noise_synth(noise[:, :total], gains, cfg.hop)
        return y[:, :length]


def _wn(m: nn.Module) -> nn.Module:
    return weight_norm(m)


class WaveCriticStack(nn.Module):
    """One MelGAN-style critic on a waveform; returns its feature maps and a score per
    example (mean over time of the last map plus a projection of the conditioning)."""

    def __init__(self, width: int, n_pitches: int, n_instruments: int):
        super().__init__()
        w = width
        self.layers = nn.ModuleList([
            _wn(nn.Conv1d(1, w, 15, padding=7)),
            _wn(nn.Conv1d(w, 4 * w, 41, stride=4, padding=20, groups=4)),
            _wn(nn.Conv1d(4 * w, 8 * w, 41, stride=4, padding=20, groups=8)),
            _wn(nn.Conv1d(8 * w, 8 * w, 41, stride=4, padding=20, groups=16)),
            _wn(nn.Conv1d(8 * w, 8 * w, 5, padding=2)),
        ])
        self.last = _wn(nn.Conv1d(8 * w, 1, 3, padding=1))
        self.embed_pitch = nn.Embedding(n_pitches, 8 * w)
        self.embed_inst = nn.Embedding(n_instruments, 8 * w)
        nn.init.normal_(self.embed_pitch.weight, std=0.01)
        nn.init.normal_(self.embed_inst.weight, std=0.01)

    def forward(self, x, pitch_idx, inst):
        feats = []
        h = x.unsqueeze(1)
        for conv in self.layers:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        pooled = h.mean(2)
        score = self.last(h).mean((1, 2)) + ((self.embed_pitch(pitch_idx) + self.embed_inst(inst)) * pooled).sum(1)
        return score, feats


class SpecCriticStack(nn.Module):
    """One UnivNet-style critic on a log-magnitude spectrogram at one resolution."""

    def __init__(self, n_fft: int, width: int, n_pitches: int, n_instruments: int):
        super().__init__()
        self.n_fft = n_fft
        w = width
        self.layers = nn.ModuleList([
            _wn(nn.Conv2d(1, w, (9, 3), stride=(2, 1), padding=(4, 1))),
            _wn(nn.Conv2d(w, w, (9, 3), stride=(2, 2), padding=(4, 1))),
            _wn(nn.Conv2d(w, 2 * w, (9, 3), stride=(2, 1), padding=(4, 1))),
            _wn(nn.Conv2d(2 * w, 2 * w, (9, 3), stride=(2, 1), padding=(4, 1))),
            _wn(nn.Conv2d(2 * w, 2 * w, (3, 3), padding=(1, 1))),
        ])
        self.last = _wn(nn.Conv2d(2 * w, 1, (3, 3), padding=(1, 1)))
        self.embed_pitch = nn.Embedding(n_pitches, 2 * w)
        self.embed_inst = nn.Embedding(n_instruments, 2 * w)
        nn.init.normal_(self.embed_pitch.weight, std=0.01)
        nn.init.normal_(self.embed_inst.weight, std=0.01)

    def forward(self, x, pitch_idx, inst):
        s = torch.stft(x, self.n_fft, self.n_fft // 4, window=torch.hann_window(self.n_fft), return_complex=True)
        h = torch.log(s.abs().clamp_min(1e-5)).unsqueeze(1)  # (B, 1, freq, time)
        feats = []
        for conv in self.layers:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        pooled = h.mean((2, 3))
        score = self.last(h).mean((1, 2, 3)) + ((self.embed_pitch(pitch_idx) + self.embed_inst(inst)) * pooled).sum(1)
        return score, feats


class NoteCritics(nn.Module):
    def __init__(self, cfg: DDSPGANConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.critic_width
        self.wave = nn.ModuleList(WaveCriticStack(w, cfg.n_pitches, cfg.n_instruments) for _ in range(3))
        self.spec = nn.ModuleList(SpecCriticStack(n, w, cfg.n_pitches, cfg.n_instruments) for n in (256, 1024, 2048))

    def forward(self, x: torch.Tensor, pitch_idx: torch.Tensor, inst: torch.Tensor):
        """→ list of (score (B,), feature maps) for every critic."""
        outs = []
        h = x
        for i, d in enumerate(self.wave):
            if i:
                h = F.avg_pool1d(h.unsqueeze(1), 4, 2, padding=1).squeeze(1)
            outs.append(d(h, pitch_idx, inst))
        for d in self.spec:
            outs.append(d(x, pitch_idx, inst))
        return outs


class DDSPGAN(nn.Module):
    family = "ddsp-gan"

    def __init__(self, cfg: DDSPGANConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.G = DDSPGenerator(cfg)
        self.D = NoteCritics(cfg)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def n_generator_params(self) -> int:
        return sum(p.numel() for p in self.G.parameters())

    @torch.no_grad()
    def sample(self, pitch: torch.Tensor, inst: torch.Tensor, velocity: torch.Tensor, g: torch.Generator,
               *, hold: float | torch.Tensor | None = None, length: int | None = None,
               z_scale: float | None = None) -> torch.Tensor:
        """Notes (B, length) for MIDI pitches, instrument indices and velocities: z and the
        noise come from ``g``, so a seed gives the same notes. ``hold`` seconds of key-down
        and ``length`` samples in all (defaults: the training clips'); ``z_scale`` the
        spread of z (default: the model's ``latent_scale``)."""
        cfg = self.cfg
        length = cfg.length if length is None else length
        z = torch.randn(len(pitch), cfg.z_dim, generator=g) * (cfg.latent_scale if z_scale is None else z_scale)
        noise = torch.randn(len(pitch), -(-length // cfg.hop) * cfg.hop, generator=g)
        return self.G(z, pitch.float(), inst.long(), velocity.float(), hold=hold, length=length, noise=noise)


def multi_resolution_stft_loss(x: torch.Tensor, y: torch.Tensor,
                               ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128)) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over resolutions (Yamamoto et al. 2020)."""
    total = x.new_zeros(())
    for n in ffts:
        win = torch.hann_window(n)
        sx = torch.stft(x, n, n // 4, window=win, return_complex=True).abs()
        sy = torch.stft(y, n, n // 4, window=win, return_complex=True).abs()
        sc = torch.linalg.norm(sy - sx, dim=(1, 2)) / torch.linalg.norm(sy, dim=(1, 2)).clamp_min(1e-6)
        mag = (torch.log(sx.clamp_min(1e-5)) - torch.log(sy.clamp_min(1e-5))).abs().mean((1, 2))
        total = total + (sc + mag).mean()
    return total / len(ffts)


def log_spectrum_distance(x: torch.Tensor, y: torch.Tensor, n_fft: int = 1024) -> torch.Tensor:
    """Mean absolute difference of log magnitude spectrograms, per example (B,)."""
    win = torch.hann_window(n_fft)
    sx = torch.stft(x, n_fft, n_fft // 4, window=win, return_complex=True).abs()
    sy = torch.stft(y, n_fft, n_fft // 4, window=win, return_complex=True).abs()
    return (torch.log(sx + 1e-4) - torch.log(sy + 1e-4)).abs().mean((1, 2))
