"""The distribution of inter-onset intervals in notated music, in quarter notes, that the
audio tempo estimate uses as its prior (mir/audio.py): every onset of every voice of the
train splits of the bundled chorale and folk corpora, log2-binned by quarter octaves.

    python scripts/ioi_prior.py   → src/tunesmith/assets/ioi_prior.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tunesmith.music.dataset import open_dataset

OUT = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "ioi_prior.json"
EDGES = np.arange(-4.125, 3.1251, 0.25)  # log2 quarters, bins centred on a 64th note … 8 quarters


def main() -> None:
    mix = np.zeros(len(EDGES) - 1)
    pieces = 0
    for corpus in ("bach-chorales", "folk"):  # the two styles weigh the same
        counts = np.zeros(len(EDGES) - 1)
        ds = open_dataset(corpus, progress=False)
        for e in ds.split("train"):
            s = ds.load(e)
            tpq = s.music.ticks_per_quarter
            t = np.unique([n.time for tr in s.music.tracks for n in tr.notes])
            ioi = np.diff(t) / tpq
            ioi = ioi[ioi > 0]
            counts += np.histogram(np.log2(ioi), EDGES)[0]
            pieces += 1
        mix += counts / counts.sum()
    p = (mix / 2 + 1e-3) / (mix / 2 + 1e-3).sum()  # no interval is impossible
    OUT.write_text(json.dumps({"what": "inter-onset intervals of notated music, log2 quarter notes",
                               "source": "train splits of bach-chorales and folk, weighing the same (every voice's onsets merged)",
                               "pieces": pieces, "edges_log2_quarters": EDGES.round(4).tolist(),
                               "probability": p.round(6).tolist()}, indent=1))
    print(f"wrote {OUT} from {pieces} pieces")


if __name__ == "__main__":
    main()
