"""Judging generated notes with the classifier trained here (no downloaded weights).

- pitch accuracy: the share of generated notes whose classifier pitch is the asked one;
- inception score over pitch classes: exp E_x KL(p(y|x) ‖ p(y)) (Salimans et al. 2016);
- Fréchet distance between generated and held-out real clips (valid + test splits) in
  the classifier's 32-d embedding (as FID, with the covariance square root by eigenvalues);
- NDB (Richardson & Weiss 2018): k-means (k = 20) on log spectra of the training clips;
  a bin is statistically different when a two-proportion z-test between the training
  share and the evaluated set's share rejects at α = 0.05; NDB/k is reported.
The same figures for as many real training clips are the ceiling, and for a WaveGAN at
initialisation (same architecture, untrained) the floor.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tunesmith.audio.classifier import NoteClassifier
from tunesmith.audio.dataset import NoteData


def inception_score(p: np.ndarray) -> float:
    py = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(axis=1)
    return float(math.exp(kl.mean()))


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    ridge = np.eye(a.shape[1]) * 1e-6
    s1, s2 = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    lam = np.linalg.eigvals(s1 @ s2).real
    return max(0.0, float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(lam, 0, None)).sum()))


def log_spectra(audio: np.ndarray) -> np.ndarray:
    """Time-averaged log magnitude spectra (n_fft 1024), the NDB feature."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    s = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
    return torch.log1p(100 * s).mean(dim=2).numpy()


class NDB:
    def __init__(self, train_audio: np.ndarray, k: int = 20, seed: int = 0):
        from sklearn.cluster import KMeans

        self.k = k
        f = log_spectra(train_audio)
        self.km = KMeans(k, n_init=4, random_state=seed).fit(f)
        self.train_share = np.bincount(self.km.labels_, minlength=k) / len(f)
        self.n_train = len(f)

    def __call__(self, audio: np.ndarray, alpha: float = 0.05) -> dict:
        from scipy.stats import norm

        lab = self.km.predict(log_spectra(audio))
        share = np.bincount(lab, minlength=self.k) / len(lab)
        n1, n2 = self.n_train, len(lab)
        pooled = (self.train_share * n1 + share * n2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.divide(share - self.train_share, se, out=np.zeros(self.k), where=se > 0)
        different = int((2 * norm.sf(np.abs(z)) < alpha).sum())
        return {"ndb": different, "k": self.k, "ndb_over_k": different / self.k}


def score_set(clf: NoteClassifier, audio: np.ndarray, pitch: np.ndarray, family: np.ndarray,
              real_heldout: dict, ndb: NDB) -> dict:
    pred = clf.predict(audio)
    acc = float((pred["pitch"].argmax(1) + clf.cfg.pitch_lo == pitch).mean())
    fam_acc = float((np.array(clf.cfg.families)[pred["family"].argmax(1)] == family).mean())
    return {"n": int(len(audio)), "pitch_accuracy": acc, "family_accuracy": fam_acc,
            "inception_score": inception_score(pred["pitch"]),
            "frechet_distance": frechet(pred["embedding"], real_heldout["embedding"]), **ndb(audio)}


def concat(a: NoteData, b: NoteData) -> NoteData:
    return NoteData(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in
                      ("audio", "program", "family", "pitch", "velocity")))


def evaluate_generator(G, clf: NoteClassifier, train: NoteData, heldout: NoteData, programs: list[int], *,
                       seed: int = 0) -> dict:
    """Generate one note per held-out clip (same pitch and instrument) and score it against
    the held-out clips. The ceiling is the same figures for as many real training clips
    (real notes the classifier has seen, against the same held-out clips). ``G`` is a
    WaveGAN generator."""
    ndb = NDB(train.audio, seed=seed)
    real_pred = clf.predict(heldout.audio)
    inst = np.array([programs.index(int(p)) for p in heldout.program])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        G.eval()
        z = torch.randn(len(heldout.audio), G.cfg.z_dim, generator=g)
        fake = G(z, torch.from_numpy(heldout.pitch - G.cfg.pitch_lo).long(), torch.from_numpy(inst).long()).numpy()
    pick = np.random.default_rng(seed).choice(len(train.audio), min(len(train.audio), len(heldout.audio)), replace=False)
    ceil = score_set(clf, train.audio[pick], train.pitch[pick], train.family[pick], real_pred, ndb)
    ceil["note"] = "real training clips against the held-out clips"
    return {"generated": score_set(clf, fake, heldout.pitch, heldout.family, real_pred, ndb), "real": ceil,
            "fake_audio": fake}
