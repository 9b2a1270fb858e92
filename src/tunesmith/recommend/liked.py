"""A listener's liked pieces as training data (``train --data liked:LISTENER``).

A piece counts as liked when the listener's events on it sum to at least
:data:`~tunesmith.recommend.model.POSITIVE` (a like, a completed play, a rating of 4–5).
Each liked piece is written as one MIDI file into ``$TUNESMITH_HOME/liked/LISTENER`` (the
folder replaced whole), which the dataset layer then prepares like any folder: corpus
pieces come from their prepared dataset (one tune of a many-tune ABC file, not the file),
uploads and generated pieces from their file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, TunesmithError
from tunesmith.fileio import replaced_folder, tunesmith_home
from tunesmith.music.io import load_score, save_midi
from tunesmith.recommend.catalogue import DEFAULT_CORPORA
from tunesmith.recommend.model import POSITIVE, event_weight
from tunesmith.recommend.service import load_catalogue, load_events

PREFIX = "liked:"


def liked_keys(listener: str, *, url: str | None = None) -> list[str]:
    """Keys of the pieces this listener likes, most liked first."""
    log = load_events(url, listener=listener)
    if not len(log.piece_id):
        raise BadInputError(listener, "no listening events for this listener in the store")
    total: dict[int, float] = {}
    for pid, kind, value in zip(log.piece_id, log.kind, log.value):
        total[int(pid)] = total.get(int(pid), 0.0) + event_weight(kind, None if np.isnan(value) else value)
    cat = load_catalogue(url)
    key_of = dict(zip(cat.ids.tolist(), cat.keys))
    return [key_of[p] for p, w in sorted(total.items(), key=lambda kv: -kv[1]) if w >= POSITIVE and p in key_of]


def export_liked(listener: str, *, url: str | None = None, folder: str | Path | None = None) -> tuple[Path, int]:
    """Write the listener's liked pieces as MIDI files; returns (folder, pieces written)."""
    from tunesmith.music.dataset import open_dataset

    keys = liked_keys(listener, url=url)
    if not keys:
        raise BadInputError(listener, "likes no piece yet (a like, a completed play or a rating of 4–5)")
    cat = load_catalogue(url)
    row = {k: i for i, k in enumerate(cat.keys)}
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in listener)[:80]
    out = Path(folder) if folder else tunesmith_home() / "liked" / safe
    want = {cat.hashes[row[k]]: k for k in keys if cat.hashes[row[k]]}
    scores = {}
    for name in DEFAULT_CORPORA:  # corpus pieces: from their prepared datasets, by content hash
        if not want.keys() - scores.keys():
            break
        if not any(cat.corpus[row[k]] and (cat.corpus[row[k]] == name or name == "folk") for k in want.values()):
            continue
        ds = open_dataset(name, progress=False)
        for e in ds.entries:
            h = e.get("hash") or e["id"]
            if h in want and h not in scores:
                scores[h] = ds.load(e)
    n = 0
    with replaced_folder(out) as tmp:
        for i, k in enumerate(keys):
            h, path = cat.hashes[row[k]], cat.paths[row[k]]
            score = scores.get(h)
            if score is None and path and Path(path).is_file():
                try:
                    score = load_score(path)
                except TunesmithError:
                    score = None
            if score is None or not score.n_notes:
                continue
            save_midi(score, tmp / f"{i:04d}.mid")
            n += 1
    if n == 0:
        raise BadInputError(listener, "none of the liked pieces could be read")
    return out, n
