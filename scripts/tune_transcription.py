"""How the transcription thresholds (music/audio.py ``transcribe``) were chosen: basic-pitch's
onset and frame thresholds scored by note F1 (mir_eval, onset within 50 ms, pitch exact) on
30 pieces of the *train* splits of bach-chorales and folk, rendered with the SoundFont at
70–140 qpm on piano, strings, organ, flute and guitar (the benchmark, benchmarks/mir.py,
uses held-out pieces). The network runs once per piece; only the note decoding is repeated.

    python scripts/tune_transcription.py
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import mir_eval
    import symusic
    from basic_pitch.inference import run_inference
    from basic_pitch.note_creation import model_output_to_notes

    from tunesmith.music.audio import _basic_pitch_model
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.render import render_wav

    logging.getLogger().setLevel(logging.ERROR)
    rng = np.random.default_rng(11)
    programs = {"piano": 0, "strings": 48, "organ": 19, "flute": 73, "guitar": 24}
    pieces = []
    for corpus in ("bach-chorales", "folk"):
        ds = open_dataset(corpus, progress=False)
        train = ds.split("train")
        pieces += [ds.load(train[int(k)]) for k in rng.choice(len(train), 15, replace=False)]
    model = _basic_pitch_model()
    data = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(pieces):
            inst = list(programs)[k % len(programs)]
            s = s.copy()
            s.music.tempos.clear()
            s.music.tempos.append(symusic.Tempo(0, float(rng.uniform(70, 140))))
            for t in s.music.tracks:
                t.program = programs[inst]
            wav = Path(tmp) / f"p{k}.wav"
            render_wav(s, wav, sample_rate=22050)
            with contextlib.redirect_stdout(io.StringIO()):
                out = run_inference(str(wav), model)
            ref = s.music.to("second")
            ri = np.array([[n.time, n.time + n.duration] for t in ref.tracks for n in t.notes])
            rp = np.array([440 * 2 ** ((n.pitch - 69) / 12) for t in ref.tracks for n in t.notes])
            data.append((inst, out, ri, rp))

    def f1(onset: float, frame: float) -> tuple[float, dict]:
        by: dict[str, list[float]] = {}
        for inst, out, ri, rp in data:
            _, ev = model_output_to_notes(out, onset_thresh=onset, frame_thresh=frame, min_note_len=11,
                                          include_pitch_bends=False)
            f = 0.0
            if ev:
                ei = np.array([[a, max(b, a + 0.01)] for a, b, _, _, _ in ev])
                ep = np.array([440 * 2 ** ((p - 69) / 12) for _, _, p, _, _ in ev])
                f = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05,
                                                                       offset_ratio=None)[2]
            by.setdefault(inst, []).append(f)
        return float(np.mean([x for v in by.values() for x in v])), {k: round(float(np.mean(v)), 3) for k, v in by.items()}

    for onset, frame in itertools.product((0.5, 0.6, 0.7, 0.8), (0.3, 0.4, 0.5)):
        mean, by = f1(onset, frame)
        print(f"onset {onset} frame {frame}: F1 {mean:.3f} {by}", flush=True)


if __name__ == "__main__":
    main()
