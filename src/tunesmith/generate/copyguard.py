"""An originality guard for melody sampling: no run of :data:`WINDOW` notes whose intervals
and rhythm are those of a passage of a training piece.

The evaluation's copy check (``tunesmith.evaluate.originality``) flags a generated piece
whose longest run in common with a training piece spans two bars and eight onsets. A
language model trained on a few thousand tunes reproduces some of them note for note
(5 of 200 eight-bar folk samples were flagged). This guard works while sampling, as the
rules do: before each note's pitch is drawn, every candidate pitch that would complete a
window of eight notes — seven intervals, each with the time since the previous onset —
found in the training set is masked. No run of eight or more notes can then be copied,
so nothing the check flags can be written; shorter commonplaces (a cadence figure, a
scale) stay allowed.

Windows are kept as sorted 64-bit polynomial hashes (about 4 MB for the folk corpus's
train split), built once per training set from the dataset the model card names and
kept under ``$TUNESMITH_HOME/guard``; a model whose training data is not on this machine
samples without the guard, and its report says so.
"""

from __future__ import annotations

import numpy as np

WINDOW = 8  # notes, i.e. WINDOW − 1 (interval, inter-onset time) pairs
HASH_VERSION = 1  # raise when pair_codes or window_hashes change: stored guards are then rebuilt
_P = np.uint64(0x9E3779B97F4A7C15 | 1)
_POW = np.array([pow(int(_P), j, 2**64) for j in range(WINDOW - 1)], np.uint64)


def pair_codes(pitches: np.ndarray, onsets_q: np.ndarray) -> np.ndarray:
    """One code per note after the first: its interval from the previous note and the time
    since the previous onset in twelfths of a quarter note (transposition-invariant)."""
    p = np.asarray(pitches, np.int64)
    t = np.round(np.asarray(onsets_q, float) * 12).astype(np.int64)
    iv = np.clip(np.diff(p), -127, 127) + 128
    gap = np.clip(np.diff(t), 0, 4095)
    return (iv.astype(np.uint64) << np.uint64(12)) | gap.astype(np.uint64)


def window_hashes(codes: np.ndarray) -> np.ndarray:
    """The hash of every run of WINDOW − 1 consecutive codes."""
    k = WINDOW - 1
    if len(codes) < k:
        return np.zeros(0, np.uint64)
    win = np.lib.stride_tricks.sliding_window_view(codes.astype(np.uint64), k)
    with np.errstate(over="ignore"):
        return (win * _POW).sum(axis=1, dtype=np.uint64)


class CopyGuard:
    def __init__(self, hashes: np.ndarray, *, source: str = ""):
        self.hashes = np.unique(np.asarray(hashes, np.uint64))
        self.source = source

    @classmethod
    def from_melodies(cls, melodies, *, source: str = "") -> CopyGuard:
        """``melodies``: (pitches, onsets in quarters) of each training piece, notes in order."""
        parts = [window_hashes(pair_codes(p, t)) for p, t in melodies if len(p) >= WINDOW]
        return cls(np.concatenate(parts) if parts else np.zeros(0, np.uint64), source=source)

    def copies(self, pitches: list[int], onsets_q: list[float], onset_q: float, cand: np.ndarray) -> np.ndarray:
        """Bool per candidate pitch (at onset ``onset_q``, after the notes so far): it would
        complete a training window."""
        if len(pitches) < WINDOW - 1 or not len(self.hashes):
            return np.zeros(len(cand), bool)
        prev_p = np.asarray(pitches[-(WINDOW - 1):], np.int64)
        prev_t = np.asarray(onsets_q[-(WINDOW - 1):], float)
        head = pair_codes(prev_p, prev_t)  # WINDOW − 2 codes
        iv = np.clip(np.asarray(cand, np.int64) - prev_p[-1], -127, 127) + 128
        gap = int(np.clip(round(onset_q * 12) - round(prev_t[-1] * 12), 0, 4095))
        last = (iv.astype(np.uint64) << np.uint64(12)) | np.uint64(gap)
        with np.errstate(over="ignore"):
            h = (head * _POW[:-1]).sum(dtype=np.uint64) + last * _POW[-1]
        i = np.searchsorted(self.hashes, h)
        i = np.minimum(i, len(self.hashes) - 1)
        return self.hashes[i] == h

    def report(self, masked: int, relaxed: int) -> dict:
        return {"window_notes": WINDOW, "training_windows": int(len(self.hashes)), "source": self.source,
                "choices_masked": masked, "relaxed": relaxed}


def score_melody(score) -> tuple[np.ndarray, np.ndarray]:
    """All notes of a score in order of onset (then pitch): pitches and onsets in quarters."""
    m = score.music
    tpq = m.ticks_per_quarter
    notes = sorted((n.time, n.pitch) for tr in m.tracks if not tr.is_drum for n in tr.notes)
    if not notes:
        return np.zeros(0, np.int64), np.zeros(0)
    a = np.asarray(notes, float)
    return a[:, 1].astype(np.int64), a[:, 0] / tpq


_GUARDS: dict[tuple, CopyGuard | None] = {}


def guard_for_dataset(name: str, manifest_sha256: str | None = None,
                      split_sha256: str | None = None, *, progress: bool = False) -> CopyGuard | None:
    """The guard of a dataset's train split, or None where it is not on this machine (or is
    not the data the model was trained on). A model that recorded which pieces were in which
    split (``split_sha256``) is matched on that: the guard needs the same training pieces,
    wherever the corpus is installed and whichever reader version parsed it; an older model
    is matched on its manifest hash.

    The first call on a machine prepares the dataset (about 40 s for the folk corpus on two
    cores) and builds the guard; ``progress`` shows bars for both. Later calls in the process
    reuse it; later processes load it from disk in milliseconds."""
    key = (name, manifest_sha256, split_sha256)
    if key not in _GUARDS:
        if len(_GUARDS) >= 2:  # one or two models' guards per process (a few MB each)
            _GUARDS.pop(next(iter(_GUARDS)))
        _GUARDS[key] = _build_guard(name, manifest_sha256, split_sha256, progress)
    return _GUARDS[key]


guard_for_dataset.cache_clear = _GUARDS.clear  # forget the guards held by this process


def _build_guard(name: str, manifest_sha256: str | None, split_sha256: str | None,
                 progress: bool) -> CopyGuard | None:
    from tunesmith.music.dataset import open_dataset

    try:
        ds = open_dataset(name, progress=progress)
    except Exception:  # noqa: BLE001 - any reason the data is not here: sample without the guard
        return None
    if split_sha256:
        if ds.split_hash != split_sha256:
            return None
    elif manifest_sha256 and not ds.is_manifest(manifest_sha256):
        return None
    # Built once per dataset content (about 4 s for the folk corpus) and kept on disk beside the
    # classifier features: a `generate` run then loads it in milliseconds.
    from tunesmith.fileio import tunesmith_home, write_npz

    path = tunesmith_home() / "guard" / f"{ds.name}-{ds.manifest_hash[:16]}-w{WINDOW}-v{HASH_VERSION}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return CopyGuard(z["hashes"], source=name)
    except (OSError, KeyError, ValueError):  # not built yet (or unreadable): build it
        pass
    from tqdm import tqdm

    train = ds.split("train")
    pieces = tqdm(train, desc=f"copy guard for {name}", unit="piece", dynamic_ncols=True, leave=False,
                  disable=not progress)
    guard = CopyGuard.from_melodies((score_melody(ds.load(e)) for e in pieces), source=name)
    try:
        write_npz(path, hashes=guard.hashes)
    except OSError:  # a read-only home: the guard still works, built again next time
        pass
    return guard
