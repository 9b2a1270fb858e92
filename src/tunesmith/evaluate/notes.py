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
from pathlib import Path

import numpy as np
import torch

from tunesmith.models.note_classifier import NoteClassifier
from tunesmith.music.notes import NoteData


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
        from threadpoolctl import threadpool_limits

        # one thread: OpenMP's spinning threads crawl on a machine busy with other work, and a few
        # thousand spectra do not need more (the clusters are the same)
        with threadpool_limits(limits=1, user_api="openmp"):
            self.km = KMeans(k, n_init=4, random_state=seed).fit(f)
        self.train_share = np.bincount(self.km.labels_, minlength=k) / len(f)
        self.n_train = len(f)

    def __call__(self, audio: np.ndarray, alpha: float = 0.05) -> dict:
        from scipy.stats import norm
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            lab = self.km.predict(log_spectra(audio))
        share = np.bincount(lab, minlength=self.k) / len(lab)
        n1, n2 = self.n_train, len(lab)
        pooled = (self.train_share * n1 + share * n2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.divide(share - self.train_share, se, out=np.zeros(self.k), where=se > 0)
        different = int((2 * norm.sf(np.abs(z)) < alpha).sum())
        return {"ndb": different, "k": self.k, "ndb_over_k": different / self.k}


def pyin_pitch(audio: np.ndarray, pitch: np.ndarray, sample_rate: int, seconds: float = 0.75) -> dict:
    """An independent pitch check with librosa's pYIN: the median f0 over the voiced frames
    of each note's first ``seconds`` (the held part), against the asked MIDI pitch.
    Returns the share within a semitone, the share that rounds to the asked note, and
    the median absolute error in cents (a note with no voiced frame counts as wrong)."""
    import librosa

    n = int(seconds * sample_rate)
    err = []
    for clip, p in zip(audio, pitch):
        f0, voiced, _ = librosa.pyin(np.asarray(clip[:n], dtype=np.float32), fmin=50.0, fmax=2100.0,
                                     sr=sample_rate, frame_length=2048)
        f = f0[voiced & np.isfinite(f0)] if voiced is not None else np.array([])
        err.append(abs(float(librosa.hz_to_midi(np.median(f))) - float(p)) if len(f) else np.inf)
    e = np.asarray(err)
    finite = e[np.isfinite(e)]
    return {"pyin_within_semitone": float((e < 1.0).mean()), "pyin_exact_note": float((e < 0.5).mean()),
            "pyin_median_cents": float(np.median(finite) * 100) if len(finite) else None}


def score_set(clf: NoteClassifier, audio: np.ndarray, pitch: np.ndarray, family: np.ndarray,
              real_heldout: dict, ndb: NDB, *, pyin: bool = False) -> dict:
    pred = clf.predict(audio)
    acc = float((pred["pitch"].argmax(1) + clf.cfg.pitch_lo == pitch).mean())
    fam_acc = float((np.array(clf.cfg.families)[pred["family"].argmax(1)] == family).mean())
    out = {"n": int(len(audio)), "pitch_accuracy": acc, "family_accuracy": fam_acc,
           "inception_score": inception_score(pred["pitch"]),
           "frechet_distance": frechet(pred["embedding"], real_heldout["embedding"]), **ndb(audio)}
    if pyin:
        out.update(pyin_pitch(audio, pitch, clf.cfg.sample_rate))
    return out


def concat(a: NoteData, b: NoteData) -> NoteData:
    return NoteData(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in
                      ("audio", "program", "family", "pitch", "velocity")))


def generate_like(model, data: NoteData, programs: list[int], *, seed: int = 0, batch: int = 64) -> np.ndarray:
    """One generated note per clip of ``data``: same pitch, instrument and velocity
    (``model`` is a WaveGAN or a DDSP GAN: anything with ``sample``)."""
    inst = np.array([programs.index(int(p)) for p in data.program])
    g = torch.Generator().manual_seed(seed)
    model.eval()
    out = []
    for a in range(0, len(data.audio), batch):
        sl = slice(a, a + batch)
        out.append(model.sample(torch.from_numpy(data.pitch[sl]), torch.from_numpy(inst[sl]),
                                torch.from_numpy(data.velocity[sl]).float(), g).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def evaluate_generator(model, clf: NoteClassifier, train: NoteData, heldout: NoteData, programs: list[int], *,
                       seed: int = 0, pyin: bool = False, ceiling: bool = True) -> dict:
    """Generate one note per held-out clip (same pitch, instrument, velocity) and score it
    against the held-out clips. The ceiling is the same figures for as many real training
    clips (real notes the classifier has seen, against the same held-out clips)."""
    ndb = NDB(train.audio, seed=seed)
    real_pred = clf.predict(heldout.audio)
    fake = generate_like(model, heldout, programs, seed=seed)
    res = {"generated": score_set(clf, fake, heldout.pitch, heldout.family, real_pred, ndb, pyin=pyin),
           "fake_audio": fake}
    if ceiling:
        pick = np.random.default_rng(seed).choice(len(train.audio), min(len(train.audio), len(heldout.audio)),
                                                  replace=False)
        ceil = score_set(clf, train.audio[pick], train.pitch[pick], train.family[pick], real_pred, ndb, pyin=pyin)
        ceil["note"] = "real training clips against the held-out clips"
        res["real"] = ceil
    return res


def evaluate_with_floor(gan, clf: NoteClassifier, train: NoteData, heldout: NoteData, *, seed: int = 0,
                        pyin: bool = False) -> dict:
    """A note GAN beside its floor and ceiling: ``generated`` (the trained model), ``real``
    (real training clips: the ceiling) and ``at_init`` (the same architecture untrained,
    seeded by ``seed``: the floor), all against the held-out clips; ``fake_audio`` too."""
    from tunesmith.models import registry

    res = evaluate_generator(gan.model, clf, train, heldout, gan.programs, seed=seed, pyin=pyin)
    torch.manual_seed(seed)
    init = registry.build(gan.family, gan.config["model"])
    res["at_init"] = evaluate_generator(init, clf, train, heldout, gan.programs, seed=seed, pyin=pyin,
                                        ceiling=False)["generated"]
    return res


def z_variety(model, pitch: int, inst: int, velocity: float = 80.0, *, n: int = 8, seed: int = 0) -> float:
    """How much a note changes with z: the mean log-spectral distance between the
    notes of ``n`` latents for one (pitch, instrument, velocity). 0 means one fixed
    sound per pitch."""
    from tunesmith.models.ddsp import log_spectrum_distance

    g = torch.Generator().manual_seed(seed)
    x = model.sample(torch.full((n,), pitch), torch.full((n,), inst), torch.full((n,), float(velocity)), g)
    a, b = torch.triu_indices(n, n, 1)
    return float(log_spectrum_distance(x[a], x[b]).mean())


def save_comparison(fake, real, gan, path: Path) -> Path:
    """Spectrograms of one generated note beside the real note of the same pitch,
    instrument and velocity, for two pitches of every instrument."""
    clips, titles = [], []
    for prog in gan.programs:
        rows = [k for k in range(len(real.audio)) if int(real.program[k]) == prog][:2]
        for k in rows:
            clips += [fake[k], real.audio[k]]
            titles += [f"generated: program {prog}, pitch {real.pitch[k]}", f"real: program {prog}, pitch {real.pitch[k]}"]
    from tunesmith.music.plot import save_spectrograms

    return save_spectrograms(np.asarray(clips), titles, path, gan.sample_rate)
