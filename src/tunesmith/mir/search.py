"""Melody similarity search: find the known piece a snippet comes from.

Two stages, as in query-by-humming systems:

1. **Recall** — every piece's melody (its top voice, one note per onset, repeated
   notes merged so that a changed rhythm does not matter) is cut into windows of
   :data:`WINDOW` notes. Each window becomes a vector of hashed interval features:
   pairs of successive intervals taken with skips of one or two notes (so an
   added ornament note is stepped over) and interval trigrams. Intervals make it
   transposition-invariant; durations are not used, so it is tempo-invariant.
   The vectors (TF-IDF weighted, L2-normalised) live in a faiss inner-product
   index; the best windows name the candidate pieces.
2. **Ranking** — the query's intervals are aligned against each candidate's
   whole melody by local alignment (Smith–Waterman) in which an ornament's two
   intervals may match the one interval they replace; the alignment score ranks
   the candidates and its end points give the matching bars.

The index is kept on disk under ``$TUNESMITH_HOME/index`` in parts (one per
corpus or folder), each rebuilt only for pieces it has not seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError
from tunesmith.evaluate.metrics import extract_notes
from tunesmith.fileio import atomic_write_bytes, write_json
from tunesmith.mir.analysis import melody_line
from tunesmith.music.corpora import readable_name
from tunesmith.music.score import Score

DIM = 256
WINDOW = 32  # notes per indexed window
HOP = 16
CLIP = 12
FORMAT_VERSION = 1
SKIPS = ((1, 1), (1, 2), (2, 1))


@dataclass
class Melody:
    pitches: np.ndarray  # int16, repeated notes merged
    onsets: np.ndarray  # float32 quarter notes from the start of the piece
    bar_quarters: float  # length of a bar, for naming the matching bars
    pickup: float = 0.0


def melody_of(score: Score) -> Melody:
    """The searchable melody of a piece: its top voice, one note per onset, repeats merged."""
    n = extract_notes(score)
    idx = melody_line(n)
    p = n.pitch[idx].astype(np.int16)
    t = (n.start[idx] / n.tpq).astype(np.float32)
    if len(p):
        keep = np.r_[True, p[1:] != p[:-1]]
        p, t = p[keep], t[keep]
    return Melody(p, t, n.bar_ticks / n.tpq)


def feature_ids(p: np.ndarray) -> np.ndarray:
    """Hashed feature ids of a pitch sequence (see the module docstring)."""
    p = p.astype(np.int64)
    out = []
    for a, b in SKIPS:
        if len(p) > a + b:
            d1 = np.clip(p[a:len(p) - b] - p[:len(p) - a - b], -CLIP, CLIP) + CLIP
            d2 = np.clip(p[a + b:] - p[a:len(p) - b], -CLIP, CLIP) + CLIP
            out.append((d1 * 25 + d2) * 2654435761 % DIM)
    if len(p) > 3:
        iv = np.clip(np.diff(p), -CLIP, CLIP) + CLIP
        out.append(((iv[:-2] * 625 + iv[1:-1] * 25 + iv[2:]) * 40503 + 7) % DIM)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _vector(p: np.ndarray, idf: np.ndarray) -> np.ndarray:
    v = np.bincount(feature_ids(p), minlength=DIM).astype(np.float32)
    v = np.sqrt(v) * idf
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _windows(n_notes: int) -> list[tuple[int, int]]:
    if n_notes <= WINDOW:
        return [(0, n_notes)]
    starts = list(range(0, n_notes - WINDOW + 1, HOP))
    if starts[-1] + WINDOW < n_notes:
        starts.append(n_notes - WINDOW)
    return [(s, s + WINDOW) for s in starts]


# --------------------------------------------------------------------------- alignment

def _align_py(q: np.ndarray, t: np.ndarray, qr: np.ndarray, tr: np.ndarray) -> tuple[float, int, int]:
    """Local alignment of interval sequences: (score, start, end) in ``t`` (end exclusive).

    match +2 (+0.5 more when the two notes' rhythm — ``qr``/``tr``, the quantised log ratio of
    successive inter-onset intervals — agrees too), near miss (±1 semitone) +0.5, mismatch −1,
    gap −1; an ornament's two intervals against the one they replace (q[i-1]+q[i] == t[j]) and
    the reverse score +1.5."""
    m, n = len(q), len(t)
    H = np.zeros((m + 1, n + 1), np.float32)
    S = np.zeros((m + 1, n + 1), np.int64)  # start column of the best path into each cell
    for j in range(n + 1):
        S[0, j] = j
    best, bj, bs = 0.0, 0, 0
    for i in range(1, m + 1):
        S[i, 0] = 0
        for j in range(1, n + 1):
            d = q[i - 1] - t[j - 1]
            s = (2.5 if qr[i - 1] == tr[j - 1] else 2.0) if d == 0 else (0.5 if d == 1 or d == -1 else -1.0)
            h, st = 0.0, j - 1
            v = H[i - 1, j - 1] + s
            if v > h:
                h, st = v, S[i - 1, j - 1]
            v = H[i - 1, j] - 1.0
            if v > h:
                h, st = v, S[i - 1, j]
            v = H[i, j - 1] - 1.0
            if v > h:
                h, st = v, S[i, j - 1]
            if i >= 2 and q[i - 2] + q[i - 1] == t[j - 1]:
                v = H[i - 2, j - 1] + 1.5
                if v > h:
                    h, st = v, S[i - 2, j - 1]
            if j >= 2 and t[j - 2] + t[j - 1] == q[i - 1]:
                v = H[i - 1, j - 2] + 1.5
                if v > h:
                    h, st = v, S[i - 1, j - 2]
            H[i, j] = h
            S[i, j] = st if h > 0 else j
            if h > best:
                best, bj, bs = h, j, S[i, j]
    return float(best), int(bs), int(bj)


try:  # numba ships with librosa; the pure-Python version is the reference and the fallback
    from numba import njit

    _align = njit(cache=True, nogil=True)(_align_py)
except Exception:  # noqa: BLE001 - any numba problem: fall back to Python
    _align = _align_py


def rhythm_codes(onsets: np.ndarray) -> np.ndarray:
    """One code per interval: the quantised log2 ratio of its inter-onset interval to the
    previous one (tempo-invariant); 0 for the first."""
    ioi = np.maximum(np.diff(np.asarray(onsets, np.float64)), 1e-3)
    r = np.zeros(len(ioi), np.int64)
    if len(ioi) > 1:
        r[1:] = np.round(2 * np.log2(ioi[1:] / ioi[:-1])).astype(np.int64)
    return r


def align(q_pitches: np.ndarray, t_pitches: np.ndarray, q_onsets: np.ndarray | None = None,
          t_onsets: np.ndarray | None = None) -> tuple[float, int, int]:
    """Normalised alignment score of a query melody against a piece's melody (1 = every
    interval matches; up to 1.25 when the rhythm matches too, if onsets are given), and the
    piece's note range [start, end] the match covers."""
    q = np.diff(q_pitches.astype(np.int64))
    t = np.diff(t_pitches.astype(np.int64))
    if not len(q) or not len(t):
        return 0.0, 0, 0
    qr = rhythm_codes(q_onsets) if q_onsets is not None else np.full(len(q), -99, np.int64)
    tr = rhythm_codes(t_onsets) if t_onsets is not None else np.full(len(t), -98, np.int64)
    s, a, b = _align(q, t, qr, tr)
    return s / (2.0 * len(q)), a, b


# --------------------------------------------------------------------------- the index

def index_home() -> Path:
    from tunesmith.music.dataset import tunesmith_home

    return tunesmith_home() / "index"


@dataclass
class Part:
    """The indexed pieces of one source (a corpus or a folder)."""

    name: str
    ids: list[str]  # content hashes
    names: list[str]  # readable: "bach-chorales/bwv269", "essen/han1: Title"
    sources: list[str]
    bar_quarters: np.ndarray  # (P,)
    offsets: np.ndarray  # (P+1,) into pitches/onsets
    pitches: np.ndarray
    onsets: np.ndarray


def _part_paths(home: Path, name: str) -> tuple[Path, Path]:
    safe = hashlib.sha256(name.encode()).hexdigest()[:16]
    return home / f"part-{safe}.npz", home / f"part-{safe}.json"


def _save_part(home: Path, part: Part) -> None:
    import io

    npz, meta = _part_paths(home, part.name)
    buf = io.BytesIO()
    np.savez(buf, bar_quarters=part.bar_quarters, offsets=part.offsets, pitches=part.pitches, onsets=part.onsets)
    atomic_write_bytes(npz, buf.getvalue())
    write_json(meta, {"format_version": FORMAT_VERSION, "name": part.name, "ids": part.ids, "names": part.names,
                      "sources": part.sources})


def _load_part(home: Path, name: str) -> Part | None:
    npz, meta = _part_paths(home, name)
    if not npz.exists() or not meta.exists():
        return None
    m = json.loads(meta.read_text())
    if m.get("format_version") != FORMAT_VERSION:
        return None
    with np.load(npz, allow_pickle=False) as z:
        return Part(m["name"], m["ids"], m["names"], m["sources"], z["bar_quarters"], z["offsets"], z["pitches"],
                    z["onsets"])


def build_part(source: str, *, progress: bool = True, home: Path | None = None) -> tuple[Part, int]:
    """Index a bundled corpus (by name) or a folder of files; pieces already in the part
    (same content hash) are kept, new ones parsed. Returns the part and the number added."""
    from collections import Counter

    from tunesmith.music.corpora import is_corpus
    from tunesmith.music.dataset import open_dataset

    home = home or index_home()
    home.mkdir(parents=True, exist_ok=True)
    label = source if is_corpus(source) else Path(source).resolve().name
    key = source if is_corpus(source) else str(Path(source).resolve())
    if not is_corpus(source) and not Path(source).is_dir():
        raise OptionError("SOURCE", f"'{source}' is neither a bundled corpus nor a folder")
    old = _load_part(home, key)
    known = {} if old is None else {h: i for i, h in enumerate(old.ids)}
    ds = open_dataset(source, progress=progress)
    per_file = Counter(e["source"] for e in ds.entries)
    ids, names, sources, bq, mel_p, mel_t = [], [], [], [], [], []
    added = 0
    from tqdm import tqdm

    for e in tqdm(ds.entries, desc=f"index {label}", unit="piece", disable=not progress, leave=False):
        h = e.get("hash") or e["id"]
        if h in known:
            i = known[h]
            a, b = old.offsets[i], old.offsets[i + 1]
            p, t, q = old.pitches[a:b], old.onsets[a:b], float(old.bar_quarters[i])
            nm = old.names[i]
        else:
            mel = melody_of(ds.load(e))
            p, t, q = mel.pitches, mel.onsets, mel.bar_quarters
            title = (e.get("meta") or {}).get("title", "")
            nm = readable_name(label, e["source"], title, per_file[e["source"]])
            added += 1
        if len(p) < 4:
            continue
        ids.append(h)
        names.append(nm)
        sources.append(e["source"])
        bq.append(q)
        mel_p.append(p)
        mel_t.append(t)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in mel_p])]).astype(np.int64)
    part = Part(key, ids, names, sources, np.array(bq, np.float32), offsets,
                np.concatenate(mel_p).astype(np.int16) if mel_p else np.zeros(0, np.int16),
                np.concatenate(mel_t).astype(np.float32) if mel_t else np.zeros(0, np.float32))
    _save_part(home, part)
    manifest = home / "parts.json"
    parts = json.loads(manifest.read_text()) if manifest.exists() else []
    if key not in parts:
        parts.append(key)
        write_json(manifest, parts)
    return part, added


@dataclass
class Hit:
    rank: int
    name: str
    source: str
    score: float
    bars: tuple[int, int]  # 1-based, inclusive
    piece_id: str

    def to_dict(self) -> dict:
        return {"rank": self.rank, "name": self.name, "source": self.source, "score": round(self.score, 4),
                "bars": list(self.bars), "id": self.piece_id}


class SearchIndex:
    """All indexed parts, with one faiss index over their windows."""

    def __init__(self, parts: list[Part]):
        import faiss

        if not parts or not sum(len(p.ids) for p in parts):
            raise OptionError("index", "the search index is empty: run 'tunesmith index' first")
        self.names = [n for p in parts for n in p.names]
        self.sources = [s for p in parts for s in p.sources]
        self.ids = [h for p in parts for h in p.ids]
        self.position = {h: i for i, h in enumerate(self.ids)}
        self.bar_quarters = np.concatenate([p.bar_quarters for p in parts])
        shift = np.cumsum([0] + [len(p.pitches) for p in parts])
        self.offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift)])
        self.pitches = np.concatenate([p.pitches for p in parts])
        self.onsets = np.concatenate([p.onsets for p in parts])
        # windows, IDF over windows, vectors
        win_piece, win_ids = [], []
        for i in range(len(self.names)):
            a, b = self.offsets[i], self.offsets[i + 1]
            for s, e in _windows(b - a):
                win_piece.append(i)
                win_ids.append(feature_ids(self.pitches[a + s:a + e]))
        df = np.zeros(DIM)
        for f in win_ids:
            df[np.unique(f)] += 1
        self.idf = np.log((1 + len(win_ids)) / (1 + df)).astype(np.float32) + 1.0
        vecs = np.zeros((len(win_ids), DIM), np.float32)
        for k, f in enumerate(win_ids):
            v = np.sqrt(np.bincount(f, minlength=DIM).astype(np.float32)) * self.idf
            nv = np.linalg.norm(v)
            vecs[k] = v / nv if nv > 0 else v
        self.win_piece = np.array(win_piece, np.int64)
        self.faiss = faiss.IndexFlatIP(DIM)
        self.faiss.add(vecs)

    @classmethod
    def load(cls, home: Path | None = None) -> SearchIndex:
        home = home or index_home()
        manifest = home / "parts.json"
        if not manifest.exists():
            raise OptionError("index", f"no search index at {home}: run 'tunesmith index' first")
        parts = [p for k in json.loads(manifest.read_text()) if (p := _load_part(home, k)) is not None]
        return cls(parts)

    def __len__(self) -> int:
        return len(self.names)

    def melody(self, i: int) -> np.ndarray:
        return self.pitches[self.offsets[i]:self.offsets[i + 1]]

    def search(self, query: Melody, *, top: int = 10, candidates: int = 200, exclude: int | None = None) -> list[Hit]:
        if len(query.pitches):  # repeated notes merged, as in the index (a split note is the same melody)
            keep = np.r_[True, query.pitches[1:] != query.pitches[:-1]]
            query = Melody(query.pitches[keep], query.onsets[keep], query.bar_quarters)
        if len(query.pitches) < 3:
            raise BadInputError("query", f"a melody of {len(query.pitches)} distinct notes is too short to search "
                                "with (at least 3)")
        v = _vector(query.pitches, self.idf)[None, :]
        k = min(len(self.win_piece), candidates * 4)
        _, found = self.faiss.search(v, k)
        cand: list[int] = []
        seen = set()
        for w in found[0]:
            if w < 0:
                continue
            i = int(self.win_piece[w])
            if i not in seen and i != exclude:
                seen.add(i)
                cand.append(i)
                if len(cand) >= candidates:
                    break
        scored = []
        for i in cand:
            s, a, b = align(query.pitches, self.melody(i), query.onsets, self.onsets[self.offsets[i]:self.offsets[i + 1]])
            scored.append((s, i, a, b))
        scored.sort(key=lambda x: (-x[0], x[1]))
        hits = []
        for r, (s, i, a, b) in enumerate(scored[:top]):
            on = self.onsets[self.offsets[i]:self.offsets[i + 1]]
            bq = float(self.bar_quarters[i]) or 4.0
            first = int(on[min(a, len(on) - 1)] // bq) + 1
            last = int(on[min(b, len(on) - 1)] // bq) + 1
            hits.append(Hit(r + 1, self.names[i], self.sources[i], s, (first, last), self.ids[i]))
        return hits


def query_melody(query: str | Path, *, bars: tuple[int, int] | None = None, piece: int = 1, limits=None) -> Melody:
    """The melody of a query: a file (MIDI, MusicXML, ABC, kern, audio), ABC text, optionally
    cut to a bar range (1-based, inclusive)."""
    import tempfile

    from tunesmith.music.io import load_score

    text = str(query)
    if "\n" in text or text.lstrip().startswith("X:") or ("K:" in text and not Path(text).exists()):
        body = text if text.lstrip().startswith("X:") else "X:1\n" + text
        if "\nK:" not in "\n" + body:
            body = body.replace("X:1\n", "X:1\nK:C\n", 1)
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "query.abc"
            f.write_text(body)
            score = load_score(f, limits=limits)
    else:
        score = load_score(query, index=piece - 1, limits=limits)
    mel = melody_of(score)
    if bars is not None:
        lo, hi = bars
        if lo < 1 or hi < lo:
            raise OptionError("--bars", f"'{lo}-{hi}' is not a bar range like 5-8")
        keep = (mel.onsets >= (lo - 1) * mel.bar_quarters) & (mel.onsets < hi * mel.bar_quarters)
        if not keep.any():
            raise OptionError("--bars", f"no notes in bars {lo}-{hi} of '{query}'")
        mel = Melody(mel.pitches[keep], mel.onsets[keep], mel.bar_quarters)
    return mel


def near_duplicates(index: SearchIndex, *, threshold: float = 0.9) -> list[tuple[str, str, float]]:
    """Pairs of pieces whose melodies align almost entirely (score over the shorter ≥ threshold)."""
    pairs = {}
    for i in range(len(index)):
        mel = index.melody(i)
        head = mel[: 4 * WINDOW]
        q = Melody(head, np.zeros(len(head), np.float32), 4.0)
        for h in index.search(q, top=5, candidates=20, exclude=i):
            j = index.position[h.piece_id]
            if h.score >= threshold:
                a, b = sorted((i, j))
                pairs[(a, b)] = max(pairs.get((a, b), 0.0), h.score)
    return sorted(((index.names[a], index.names[b], s) for (a, b), s in pairs.items()), key=lambda x: -x[2])

