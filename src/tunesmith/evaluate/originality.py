"""Originality: how much of a generated piece already exists in the training set.

Each piece becomes a sequence of onset tokens, one per distinct onset time (all
voices together), each token hashing three things:

- the interval from the previous onset's top note to this onset's top note
  (transposition-invariant),
- the time to the next onset in 1/12 quarter notes (tempo-invariant),
- the shape of what starts at this onset: the set of intervals below its top note.

So a common run of tokens is a passage whose melody, rhythm and texture are the
same up to transposition: a melody harmonised differently (Bach set many chorale
tunes more than once) is *not* a common run, a copied passage is. For every
generated piece we report the longest common run with any training piece (in
onsets, quarters and bars, and which piece), the share of its n-grams (n = 4, 8,
16 onsets) that occur anywhere in the training set, and the nearest training
piece by the share of 4-grams they have in common. A piece is flagged as a copy
when its longest common run spans two bars or more *and* at least 8 onsets: two
bars of five or six long notes are a commonplace of folk song (98 of the first 200
held-out folk tunes share two bars with some training tune; 68 share two bars and
8 onsets, many of them variants of one tune), not a copy.

n-grams are compared by 64-bit polynomial hashes of the token sequence (a
collision would need two different passages with the same 64-bit hash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tunesmith.evaluate.metrics import Notes

NGRAM_SIZES = (4, 8, 16)
COPY_BARS = 2.0
COPY_MIN_ONSETS = 8
_P = np.uint64(1_000_003)
_MAX_RUN = 4096
_PINV = np.uint64(pow(1_000_003, -1, 2**64))


def onset_tokens(n: Notes) -> tuple[np.ndarray, np.ndarray]:
    """(tokens uint64, time to the next onset in quarters) per distinct onset."""
    m = n.pitched
    s, p, e = n.start[m], n.pitch[m], n.end[m]
    if not len(s):
        return np.zeros(0, np.uint64), np.zeros(0)
    order = np.lexsort((-p, s))
    s, p = s[order], p[order]
    on, first = np.unique(s, return_index=True)
    top = p[first]
    below = np.minimum(np.repeat(top, np.diff(np.append(first, len(s)))) - p, 62).astype(np.uint64)
    shape = np.bitwise_or.reduceat(np.left_shift(np.uint64(1), below), first)
    interval = np.diff(top, prepend=top[0]).astype(np.int64)
    interval[0] = 0
    gap = np.diff(on, append=max(int(e.max()), int(on[-1]))) / n.tpq  # the last: to the end
    gap_q = np.round(gap * 12).astype(np.int64)
    with np.errstate(over="ignore"):
        tok = (interval + 256).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        tok ^= (gap_q.astype(np.uint64) + np.uint64(7)) * np.uint64(0xC2B2AE3D27D4EB4F)
        tok ^= shape * np.uint64(0x165667B19E3779F9)
    return tok, gap


class NgramIndex:
    """Hashes of all token n-grams of a list of sequences, n-grams never crossing a
    sequence boundary. The polynomial hash of t[i..i+k) is Σ_j t[i+j]·P^j mod 2^64,
    obtained for every i at once from prefix sums: (H[i+k] − H[i])·P^(−i), P odd so
    that it has an inverse modulo 2^64."""

    def __init__(self, seqs: list[np.ndarray]):
        self.lengths = np.array([len(s) for s in seqs], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        tok = np.concatenate(seqs) if seqs else np.zeros(0, np.uint64)
        n = len(tok) + 1
        with np.errstate(over="ignore"):
            self.pw = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n - 1, _P, np.uint64)]), dtype=np.uint64)
            self.ipw = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n - 1, _PINV, np.uint64)]),
                                  dtype=np.uint64)
            self.H = np.concatenate([[np.uint64(0)], np.cumsum(tok * self.pw[:-1], dtype=np.uint64)])
        self.seq_id = np.repeat(np.arange(len(seqs)), self.lengths)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def hashes(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(hash, sequence index) of every k-gram."""
        starts = np.concatenate([np.arange(o, o + max(0, L - k + 1))
                                 for o, L in zip(self.offsets[:-1], self.lengths)]) if len(self.lengths) else \
            np.zeros(0, np.int64)
        starts = starts.astype(np.int64)
        with np.errstate(over="ignore"):
            h = (self.H[starts + k] - self.H[starts]) * self.ipw[starts]
        return h, self.seq_id[starts] if len(starts) else np.zeros(0, np.int64)

    def sorted_hashes(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._cache:
            h, sid = self.hashes(k)
            order = np.argsort(h, kind="stable")
            self._cache[k] = (h[order], sid[order])
        return self._cache[k]

    def contains(self, h: np.ndarray, k: int) -> np.ndarray:
        sh, _ = self.sorted_hashes(k)
        i = np.searchsorted(sh, h)
        return (i < len(sh)) & (sh[np.minimum(i, len(sh) - 1)] == h) if len(sh) else np.zeros(len(h), bool)

    def owners(self, h: np.ndarray, k: int) -> np.ndarray:
        """Sequence indices holding any of the hashes ``h`` (with repetition per hash)."""
        sh, sid = self.sorted_hashes(k)
        lo, hi = np.searchsorted(sh, h, "left"), np.searchsorted(sh, h, "right")
        return np.concatenate([sid[a:b] for a, b in zip(lo, hi) if b > a]) if len(h) else np.zeros(0, np.int64)


def _self_hashes(tok: np.ndarray, k: int) -> np.ndarray:
    if len(tok) < k:
        return np.zeros(0, np.uint64)
    return NgramIndex([tok]).hashes(k)[0]


@dataclass
class Originality:
    longest_run_onsets: int
    longest_run_quarters: float
    longest_run_bars: float
    copied_from: int | None  # index of the training piece holding the longest run
    ngram_share: dict[int, float]  # n → share of the piece's n-grams found in the training set
    nearest: int | None  # index of the training piece sharing most 4-grams
    nearest_similarity: float  # share of this piece's distinct 4-grams found in ``nearest``
    flagged: bool

    def to_dict(self) -> dict:
        return {"longest_run_onsets": self.longest_run_onsets,
                "longest_run_quarters": round(self.longest_run_quarters, 3),
                "longest_run_bars": round(self.longest_run_bars, 3), "copied_from": self.copied_from,
                "ngram_share": {str(k): v for k, v in self.ngram_share.items()}, "nearest": self.nearest,
                "nearest_similarity": self.nearest_similarity, "flagged": self.flagged}


class TrainingIndex:
    """The training set, indexed once for :meth:`check`."""

    def __init__(self, training: list[Notes]):
        toks = [onset_tokens(n)[0] for n in training]
        self.index = NgramIndex(toks)
        self.n = len(training)

    def check(self, piece: Notes) -> Originality:
        tok, gap = onset_tokens(piece)
        bar_q = piece.bar_ticks / piece.tpq
        shares = {}
        for k in NGRAM_SIZES:
            h = _self_hashes(tok, k)
            shares[k] = float(self.index.contains(h, k).mean()) if len(h) else math.nan
        # Longest common run: the largest k with any k-gram of the piece in the training
        # set (if a k-gram occurs, so do its sub-grams, so the answer is found by bisection).
        lo, hi = 0, min(len(tok), _MAX_RUN)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.index.contains(_self_hashes(tok, mid), mid).any():
                lo = mid
            else:
                hi = mid - 1
        run_q, copied = 0.0, None
        if lo:
            h = _self_hashes(tok, lo)
            hit = np.flatnonzero(self.index.contains(h, lo))
            # a run's length in time: the onsets it covers, up to the last onset's successor
            # (the last token's gap is part of the match), at most the piece's end
            csum = np.concatenate([[0.0], np.cumsum(gap)])
            spans = csum[hit + lo] - csum[hit]
            best = hit[int(np.argmax(spans))]
            run_q = float(spans.max())
            copied = int(np.bincount(self.index.owners(h[best : best + 1], lo)).argmax())
        nearest, sim = None, 0.0
        h4 = np.unique(_self_hashes(tok, 4))
        if len(h4):
            counts = self._distinct_counts(h4)
            if counts.any():
                nearest = int(counts.argmax())
                sim = float(counts[nearest] / len(h4))
        return Originality(lo, run_q, run_q / bar_q, copied, shares, nearest, sim,
                           flagged=run_q / bar_q >= COPY_BARS and lo >= COPY_MIN_ONSETS)

    def _distinct_counts(self, h4: np.ndarray) -> np.ndarray:
        sh, sid = self.index.sorted_hashes(4)
        lo, hi = np.searchsorted(sh, h4, "left"), np.searchsorted(sh, h4, "right")
        counts = np.zeros(self.n, np.int64)
        for a, b in zip(lo, hi):
            if b > a:
                counts[np.unique(sid[a:b])] += 1
        return counts
