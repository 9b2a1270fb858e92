"""The catalogue: bundled corpus pieces registered in the store, and one content vector
per piece from the MIR feature layer (``tunesmith-mir-features-v1``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from tunesmith.errors import OptionError
from tunesmith.mir.classify import dataset_features
from tunesmith.mir.features import N_FEATURES, piece_features
from tunesmith.music.corpora import CORPORA, corpus_of, entry_names, is_corpus
from tunesmith.music.dataset import open_dataset
from tunesmith.store import db
from tunesmith.store.events import add_pieces

DEFAULT_CORPORA = ("bach-chorales", "folk", "palestrina", "monteverdi", "beethoven", "mozart")


def _meta(e: dict) -> dict:
    m = e.get("meta") or {}
    tags = m.get("tags") or []
    region = next((t.split(":", 1)[1] for t in tags if t.startswith("region:")), None)
    out = {"key": m.get("key") or None, "meter": e.get("time_signature") or m.get("time_signature"),
           "tempo": m.get("tempo"), "voices": e.get("n_tracks"), "notes": e.get("n_notes"),
           "seconds": e.get("seconds"), "composer": m.get("composer") or None}
    if region:
        out["region"] = region
    return {k: v for k, v in out.items() if v is not None}


def corpus_rows(name: str, *, progress: bool = True) -> list[dict]:
    """Store rows for every piece of a bundled corpus: key = readable name (unique)."""
    if not is_corpus(name):
        raise OptionError("CORPUS", f"unknown corpus '{name}'; known: {', '.join(CORPORA)}")
    ds = open_dataset(name, progress=progress)
    names = entry_names(ds.entries, ds.name)
    seen = Counter()
    rows = []
    for e, nm in zip(ds.entries, names):
        seen[nm] += 1
        key = nm if seen[nm] == 1 else f"{nm} #{seen[nm]}"  # two tunes of one title in one file
        rows.append({"key": key, "kind": "corpus", "title": (e.get("meta") or {}).get("title", ""),
                     "corpus": corpus_of(e["source"], name), "content_hash": e.get("hash") or e["id"],
                     "path": e["source"], "meta": _meta(e)})
    return rows


def add_corpora(names: list[str], *, url: str | None = None, progress: bool = True) -> dict[str, int]:
    """Register bundled corpora's pieces in the store; returns pieces added per corpus."""
    added = {}
    for name in names:
        rows = corpus_rows(name, progress=progress)
        with db.session(url) as s:
            added[name] = add_pieces(s, rows)
    return added


def content_vectors(hashes: list[str | None], paths: list[str | None], *, corpora: tuple[str, ...] = DEFAULT_CORPORA,
                    progress: bool = True) -> np.ndarray:
    """One content vector per piece (mean of its excerpts' feature rows): from the
    classification feature cache for corpus pieces, computed from the file otherwise;
    NaN rows where a piece cannot be read."""
    by_hash: dict[str, np.ndarray] = {}
    want = {h for h in hashes if h}
    for name in corpora:
        if not want - set(by_hash):
            break
        entries, which, x, kind = dataset_features(name, progress=progress)
        sums: dict[int, list] = {}
        for i, row in zip(which[kind == 0], x[kind == 0]):  # the piece's excerpts, not the short training crops
            sums.setdefault(int(i), []).append(row)
        for i, rs in sums.items():
            h = entries[i].get("hash") or entries[i]["id"]
            if h in want:
                a = np.asarray(rs, float)
                finite = np.isfinite(a)
                by_hash[h] = np.where(finite.any(0), np.where(finite, a, 0).sum(0) / np.maximum(finite.sum(0), 1),
                                      np.nan)
    out = np.full((len(hashes), N_FEATURES), np.nan)
    for j, (h, p) in enumerate(zip(hashes, paths)):
        if h in by_hash:
            out[j] = by_hash[h]
        elif p and Path(p).is_file():
            from tunesmith.errors import TunesmithError
            from tunesmith.music.io import load_score

            try:
                out[j] = piece_features(load_score(p))
            except TunesmithError:
                pass
    return out
