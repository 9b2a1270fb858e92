"""Audio in: decoding with a bound, and audio-to-MIDI transcription.

Transcription is Spotify's **basic-pitch** (ICASSP 2022): a small polyphonic
note-and-pitch-bend model whose ONNX weights ship inside its pip package, run
here with onnxruntime, so nothing is downloaded and TensorFlow is not needed
(``scripts/setup.sh`` installs the package without its TensorFlow requirement).
It is instrument-agnostic and polyphonic, which is what a recording of a song,
a piano piece or a hummed melody needs; training our own on SoundFont renders
would only learn the SoundFont.

Every audio file is checked before it is decoded: size, then its declared
duration against ``Limits.max_minutes`` (decoding an hour of audio would hold
~600 MB of samples), then silence after decoding.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from functools import cache
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
ANALYSIS_SR = 22050
SILENCE_DBFS = -60.0  # a file whose loudest 50 ms block is quieter than this is "silent"


def audio_duration(path: Path) -> float:
    """Declared duration in seconds, read from the header (no decoding)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile's errors are all "not readable audio"
        raise BadInputError(path, f"not readable audio: {str(e).splitlines()[0][:160]}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise BadInputError(path, "no audio samples in this file")
    return info.frames / info.samplerate


def load_audio(path: str | Path, *, max_minutes: float = 30.0, max_bytes: int = 512 * 2**20,
               sr: int = ANALYSIS_SR) -> np.ndarray:
    """Mono float32 samples at ``sr`` Hz; refuses a missing, oversized, over-long or silent file."""
    import librosa

    p = Path(path)
    if not p.exists():
        raise BadInputError(p, "no such file")
    size = p.stat().st_size
    if size == 0:
        raise BadInputError(p, "empty file (0 bytes)")
    if size > max_bytes:
        raise BadInputError(p, f"file is {size / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB")
    seconds = audio_duration(p)
    if seconds > max_minutes * 60:
        raise BadInputError(p, f"{seconds / 60:.1f} minutes of audio, over the limit of {max_minutes:g} "
                               "(raise it with --max-minutes)")
    try:
        y, _ = librosa.load(str(p), sr=sr, mono=True)
    except Exception as e:  # noqa: BLE001
        raise BadInputError(p, f"cannot decode audio: {type(e).__name__}: {str(e)[:160]}") from None
    if not len(y) or not np.isfinite(y).all():
        raise BadInputError(p, "no usable audio samples")
    block = max(1, sr // 20)
    n = len(y) // block * block or len(y)
    peak_rms = float(np.sqrt((y[:n].reshape(-1, min(block, n)) ** 2).mean(axis=1)).max())
    if 20 * np.log10(max(peak_rms, 1e-12)) < SILENCE_DBFS:
        raise BadInputError(p, f"silent (no 50 ms block louder than {SILENCE_DBFS:.0f} dBFS)")
    return y.astype(np.float32)


# The tempo estimate (estimate_tempo) scores every tempo from 40 to 240 quarter notes per
# minute (0.2% apart) by four pieces of evidence, weighted as fitted on SoundFont renders of
# train-split pieces at random tempi and instruments (scripts/tune_tempo.py):
TEMPO_GRID = np.geomspace(40.0, 240.0, 900)
TEMPO_PRIOR_QPM = 100.0
TEMPO_WEIGHTS = {"eighth_grid": 3.0, "quarter_grid": 0.5, "note_values": 0.5, "tempo_prior": 4.0}
TEMPO_WINDOW_S = 8.0  # the grids are fitted in windows this long (half overlapping): a tempo may drift


@cache
def _ioi_prior() -> tuple[np.ndarray, np.ndarray]:
    """The note-value prior (scripts/ioi_prior.py), read once."""
    import json

    d = json.loads((Path(__file__).resolve().parents[1] / "assets" / "ioi_prior.json").read_text())
    return np.asarray(d["edges_log2_quarters"]), np.log(np.asarray(d["probability"]))


def onset_clusters(times: np.ndarray, within: float) -> np.ndarray:
    """Sorted onset times (seconds) without those less than ``within`` after a kept one: the notes
    of a chord, struck together, are one onset."""
    t = np.sort(np.asarray(times, float))
    keep = []
    for x in t:
        if not keep or x - keep[-1] > within:
            keep.append(x)
    return np.array(keep)


def tempo_evidence(onsets: np.ndarray) -> np.ndarray:
    """(len(TEMPO_GRID), 4) evidence for each tempo, columns as in :data:`TEMPO_WEIGHTS`:

    - how well the onsets sit on that tempo's eighth-note and quarter-note grids (the length
      of the mean phase vector, in windows of :data:`TEMPO_WINDOW_S`, weighted by onsets), each
      as a share of its best over all tempi: how well onsets fit a grid at all depends on how
      sharp they are (a bowed string's are late and uneven), which says nothing of the tempo,
      and the prior then outweighed a jittery recording's grids (on 200 held-out renders,
      within 4% 0.95 → 0.98);
    - how typical the inter-onset intervals are as note values of notated music
      (mean log-probability under ``assets/ioi_prior.json``, from the train splits);
    - a log-normal prior around 100 qpm (−log2(tempo/100)²)."""
    on = onset_clusters(onsets, 0.035)  # the notes of one chord, or one attack heard twice, are one onset
    grid = TEMPO_GRID[:, None]
    fit = np.zeros((len(TEMPO_GRID), 2))
    total = 0
    for w0 in np.arange(on[0], on[-1] + 1e-9, TEMPO_WINDOW_S / 2):
        sel = on[(on >= w0) & (on < w0 + TEMPO_WINDOW_S)]
        if len(sel) < 4:
            continue
        for c, per_minute in enumerate((30.0, 60.0)):  # eighths, quarters
            fit[:, c] += len(sel) * np.abs(np.exp(2j * np.pi * sel[None, :] * (grid / per_minute)).mean(axis=1))
        total += len(sel)
    fit /= max(total, 1)
    fit /= np.maximum(fit.max(axis=0, keepdims=True), 1e-9)
    edges, log_p = _ioi_prior()
    ioi = np.diff(on)
    ioi = ioi[ioi > 0.05]
    if len(ioi):
        bins = np.clip(np.searchsorted(edges, np.log2(ioi[None, :] * grid / 60.0)) - 1, 0, len(log_p) - 1)
        values = log_p[bins].mean(axis=1)
    else:
        values = np.zeros(len(TEMPO_GRID))
    prior = -np.log2(TEMPO_GRID / TEMPO_PRIOR_QPM) ** 2
    return np.column_stack([fit, values, prior])


# A tempo, its half, its double and its 3/2 fit a recording's onsets nearly alike (a slow tune's
# sixteenths are a fast one's eighths), and the prior around 100 qpm cannot choose between 70 and
# 140. What can is the bar the notes then make: at each of these levels of the best tempo (its best
# within 2%), the meter reader's best bar hypothesis is scored under the templates learned from
# scores (music.meter.meter_evidence, weighted as the meter reader weighs it), and this share of that
# score is added to the tempo's. Chosen on two sets of renders of train pieces (150 and 300;
# scripts/tune_tempo.py --metrical): within 4% 0.960 / 0.920 without, 0.980 / 0.923 at 0.01, every
# weight from 0.003 to 0.015 within a render or two of that (0.012 and 0.015 one render more on the
# second set); on two held-out sets (162 each, a diagnostic) 0.969 / 0.938 → 0.975 / 0.957.
METRICAL_LEVELS = (0.5, 2 / 3, 1.0, 1.5, 2.0)
METRICAL_WEIGHT = 0.01


def estimate_tempo(onsets: np.ndarray, fallback_qpm: float = 120.0, *, weights: dict | None = None,
                   notes: np.ndarray | None = None, metrical_weight: float | None = None) -> float:
    """Quarter notes per minute from onset times (seconds): the tempo of :data:`TEMPO_GRID`
    with the most weighted evidence (:func:`tempo_evidence`); with the transcription's ``notes``
    (rows of start s, end s, MIDI pitch, amplitude), the level of it (:data:`METRICAL_LEVELS`)
    whose bars the notes fill best (above).

    A beat tracker's reading is not a good anchor: librosa's is pulled towards 120 bpm and
    read 4/3 or 5/4 of the notated tempo on a third of slow chorales rendered for the
    benchmark, which no octave correction undoes; the onsets of a transcription are sharper
    evidence. With fewer than four onsets there is nothing to judge: ``fallback_qpm``."""
    on = np.asarray(onsets, float)
    on = on[np.isfinite(on)]
    if len(on) < 4 or np.ptp(on) <= 0:
        return float(fallback_qpm)
    w = weights or TEMPO_WEIGHTS
    score = tempo_evidence(on) @ np.array([w[k] for k in TEMPO_WEIGHTS])
    best = int(np.argmax(score))
    wm = METRICAL_WEIGHT if metrical_weight is None else metrical_weight
    if notes is None or wm <= 0:
        return float(TEMPO_GRID[best])
    from tunesmith.music.meter import METER_WEIGHTS, meter_evidence

    meter_w = np.array([METER_WEIGHTS[k] for k in METER_WEIGHTS])
    chosen, chosen_score = best, -np.inf
    for level in METRICAL_LEVELS:
        t = TEMPO_GRID[best] * level
        if not TEMPO_GRID[0] <= t <= TEMPO_GRID[-1]:
            continue
        j = int(np.argmin(np.abs(TEMPO_GRID - t)))
        lo, hi = max(0, j - 9), min(len(TEMPO_GRID), j + 10)  # its best within 2%
        k = lo + int(np.argmax(score[lo:hi]))
        ev = meter_evidence(np.asarray(notes, float), float(TEMPO_GRID[k]))
        if ev is None:  # too few notes to read a bar from: the onsets' tempo
            return float(TEMPO_GRID[best])
        total = score[k] + wm * float((ev.terms @ meter_w).max())
        if total > chosen_score:
            chosen, chosen_score = k, total
    return float(TEMPO_GRID[chosen])


@contextlib.contextmanager
def _quiet():
    """basic-pitch logs a warning for each backend it does not find (TF, CoreML, TFLite), prints a
    line per file, and on a recording of a few frames lets NumPy warn of a division by zero in its
    note creation (which then finds no notes, as it should): keep all of it off the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        root.setLevel(level)


@cache
def _basic_pitch_model():
    with _quiet():
        from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
        from basic_pitch.inference import Model

        return Model(build_icassp_2022_model_path(FilenameSuffix.onnx))


ONSET_THRESHOLD, FRAME_THRESHOLD = 0.7, 0.4
REFINER_BEFORE, REFINER_AFTER = 24, 8  # activation frames before and after a note's onset frame
REFINER_SHIFT = (-0.3, 0.03)  # seconds a refined onset may move
REFINER_FILE = Path(__file__).resolve().parents[1] / "assets" / "onset_refiner.safetensors"


def onset_features(model_output: dict, events) -> np.ndarray:
    """(n_notes, 64): for each note event (start, end, pitch, …) of basic-pitch, the note and
    onset activations of its pitch from 24 frames before its onset frame to 8 after (zero
    outside the recording) — the shape of its attack, which :func:`refine_onsets` reads."""
    from basic_pitch.note_creation import model_frames_to_time

    na, oa = model_output["note"], model_output["onset"]
    n_frames = na.shape[0]
    w = REFINER_BEFORE + REFINER_AFTER
    out = np.zeros((len(events), 2 * w), np.float32)
    if not len(events):
        return out
    times = model_frames_to_time(n_frames)
    frames = np.clip(np.searchsorted(times, [float(e[0]) for e in events]), 0, n_frames - 1)
    for i, (f, e) in enumerate(zip(frames, events)):
        k = int(e[2]) - 21
        lo, hi = max(0, f - REFINER_BEFORE), min(n_frames, f + REFINER_AFTER)
        a = REFINER_BEFORE - (f - lo)
        out[i, a : a + hi - lo] = na[lo:hi, k]
        out[i, w + a : w + a + hi - lo] = oa[lo:hi, k]
    return out


@cache
def _refiner() -> list[tuple[np.ndarray, np.ndarray]]:
    from safetensors.numpy import load_file

    t = load_file(str(REFINER_FILE))
    return [(t[f"w{i}"], t[f"b{i}"]) for i in range(len(t) // 2)]


def refine_onsets(model_output: dict, events) -> np.ndarray:
    """Onset times (seconds) of basic-pitch's note events, moved to where the notes begin.

    basic-pitch places an onset where its onset activation peaks; for instruments with a
    slow attack (bowed strings, organ pipes, voices) that peak comes 40–200 ms after the
    note began, past the 50 ms a transcription is judged by. A small network (64→64→32→1,
    ``assets/onset_refiner.safetensors``, trained by ``scripts/train_onset_refiner.py``
    on SoundFont renders of *train* pieces played by 22 instruments) reads the attack's
    shape in the activations and predicts how far back the note began. It was fitted on
    one SoundFont's attacks; on renders of other pieces its gain is measured
    (BENCHMARKS.md), on recordings it is not, so ``transcribe --raw-onsets`` turns it off.

    The forward pass is written with NumPy (three matrix products): the weights are a
    scikit-learn MLP's, stored as safetensors so that nothing is unpickled."""
    starts = np.array([float(e[0]) for e in events])
    if not len(events):
        return starts
    h = onset_features(model_output, events).astype(np.float64)
    layers = _refiner()
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    shift = np.clip(h[:, 0], *REFINER_SHIFT)
    new = np.maximum(starts + shift, 0.0)
    # a note never moves back over the previous note of its own pitch
    pitch = np.array([int(e[2]) for e in events])
    end = np.array([float(e[1]) for e in events])
    for p in np.unique(pitch):
        idx = np.flatnonzero(pitch == p)
        idx = idx[np.argsort(starts[idx])]
        for a, b in zip(idx[:-1], idx[1:]):
            new[b] = max(new[b], min(end[a], starts[b]))
    return new


# A recording tuned further than this from A440 (a choir, a singer, an old instrument, a tape
# running fast) is brought to A440 before basic-pitch hears it; see recording_tuning.
RETUNE_MIN_CENTS = 15.0
TUNING_SECONDS = 120.0  # the tuning is read from the recording's first two minutes


def recording_tuning(path: str | Path) -> float:
    """How far the recording's tuning is from A440, in cents (−50 … +50): librosa's estimate
    (the deviation of its spectral peaks from the equal-tempered semitones), on the first
    :data:`TUNING_SECONDS`."""
    import librosa

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _TUNINGS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, sr = librosa.load(str(p), sr=ANALYSIS_SR, mono=True, duration=TUNING_SECONDS)
            cents = float(librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=12)) * 100.0
        if len(_TUNINGS) > 64:
            _TUNINGS.clear()
        _TUNINGS[key] = round(cents, 1)
    return _TUNINGS[key]


_TUNINGS: dict = {}  # recording_tuning's readings, by file (path, size, modification time)


def basic_pitch_output(path: str | Path, *, onset_threshold: float = ONSET_THRESHOLD,
                       frame_threshold: float = FRAME_THRESHOLD, min_note_ms: float = 58.0,
                       retune: bool = True) -> tuple[dict, list, float]:
    """basic-pitch run on an audio file: its activations (``note``, ``onset``, ``contour``), its
    note events (start s, end s, MIDI pitch, amplitude, pitch bends), and the factor that takes
    the events' times to the recording's (1.0 unless it was retuned).

    basic-pitch's notes are semitones of A440: a recording tuned 40 cents sharp straddles two
    of them, and its notes fall now on one, now on the other (on 16 held-out folk tunes rendered
    with the SoundFont, note F1 0.92 in tune, 0.80 at 25 cents off, 0.59 at 40). So where
    :func:`recording_tuning` reads the recording more than :data:`RETUNE_MIN_CENTS` off, the
    audio is resampled by that much first (``retune=False``: never): pitch and speed change
    together, with nothing a phase vocoder would smear, and the events' times are then that
    factor too slow — the returned factor puts them back (the activations stay in the
    resampled recording's frames).

    The last file's result is kept (keyed by path, size, modification time and settings),
    so ``analyze``'s tempo estimate and its transcription run the model once."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, onset_threshold, frame_threshold, min_note_ms, retune)
    if _LAST_OUTPUT.get("key") == key:
        return _LAST_OUTPUT["value"]
    model = _basic_pitch_model()
    cents = recording_tuning(p) if retune else 0.0
    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        from basic_pitch.inference import predict

        source, scale = str(p), 1.0
        if abs(cents) > RETUNE_MIN_CENTS:
            import librosa
            import soundfile as sf

            scale = 2.0 ** (-cents / 1200)  # played at this rate, the recording is in tune
            y, sr = librosa.load(str(p), sr=ANALYSIS_SR, mono=True)
            source = str(Path(tmp) / "retuned.wav")
            sf.write(source, librosa.resample(y, orig_sr=sr * scale, target_sr=sr), sr, subtype="FLOAT")
        out, _, events = predict(source, model, onset_threshold=onset_threshold,
                                 frame_threshold=frame_threshold, minimum_note_length=min_note_ms)
    _LAST_OUTPUT.clear()
    _LAST_OUTPUT.update(key=key, value=(out, events, scale))
    return out, events, scale


_LAST_OUTPUT: dict = {}


def basic_pitch_notes(path: str | Path, *, onset_threshold: float = ONSET_THRESHOLD,
                      frame_threshold: float = FRAME_THRESHOLD, min_note_ms: float = 58.0,
                      refine: bool = True, retune: bool = True) -> list[tuple[float, float, int, float]]:
    """basic-pitch's notes of an audio file as (start s, end s, MIDI pitch, amplitude 0–1),
    onsets refined by :func:`refine_onsets` unless ``refine`` is False, the recording brought to
    A440 first where it is tuned off it unless ``retune`` is False (:func:`basic_pitch_output`)."""
    out, events, scale = basic_pitch_output(path, onset_threshold=onset_threshold, frame_threshold=frame_threshold,
                                            min_note_ms=min_note_ms, retune=retune)
    starts = refine_onsets(out, events) if refine else np.array([float(e[0]) for e in events])
    return [(float(s) * scale, max(float(e[1]) * scale, float(s) * scale + 0.01), int(e[2]), float(e[3]))
            for s, e in zip(starts, events)]


def transcription_meter(score) -> dict | None:
    """The meter :func:`transcribe` estimated for a recording (None where it had too few notes to
    and assumed 4/4, or the score is no transcription): its time signature, whether it was given,
    the estimate's confidence (of where the bars begin, where the meter was given), the bar's
    length and the recording's time of the first bar line (seconds; negative where the music
    begins with a pickup)."""
    tag = next((t for t in score.meta.tags if t.startswith(("meter:estimated:", "meter:given:"))), None)
    ts = score.time_signature()
    if tag is None or ts is None or score.meta.audio_offset is None or not score.tempo():
        return None
    num, den = (int(x) for x in ts.split("/"))
    return {"time_signature": ts, "given": tag.startswith("meter:given:"), "confidence": float(tag.rsplit(":", 1)[1]),
            "bar_seconds": round(num * 4 / den * 60 / float(score.tempo()), 4),
            "first_bar_line_seconds": float(score.meta.audio_offset)}


def transcribe(path: str | Path, *, max_minutes: float = 30.0, onset_threshold: float = ONSET_THRESHOLD,
               frame_threshold: float = FRAME_THRESHOLD, min_note_ms: float = 58.0, raw_onsets: bool = False,
               meter: str | None = None):
    """Transcribe an audio file to a :class:`~tunesmith.music.score.Score` (one piano track).

    The thresholds on basic-pitch's note-onset and note-frame activations are higher than
    its defaults (0.5, 0.3): on SoundFont renders of training pieces they raise note F1 from
    0.61 to 0.68 (``scripts/tune_transcription.py``), mostly by dropping spurious short
    notes. Recordings with more noise may want lower ones (``transcribe --onset-threshold``).
    Onsets are then moved to where each note's attack began (:func:`refine_onsets`;
    ``raw_onsets=True`` keeps basic-pitch's). A recording tuned more than
    :data:`RETUNE_MIN_CENTS` off A440 is heard at A440 (:func:`basic_pitch_output`), its notes
    the nearest semitones there, and the score is tagged ``tuning:+38`` (cents).
    The tempo is the recording's (:func:`estimate_tempo` on the notes' onsets), so a quarter note
    in the score is a quarter note of the recording. The meter and where the bars begin are
    estimated from the notes (:func:`tunesmith.music.meter.estimate_meter`): the first downbeat
    falls on a bar line, and notes before it make a pickup bar, padded with rest as the corpora's
    pickups are; ``meter`` (``"3/4"``, one of :data:`tunesmith.music.meter.METERS`) says the
    meter, and only where its bars begin is estimated. With too few notes to judge (fewer than
    8 onsets), the bars are 4/4 from the recording's start and the score is tagged
    ``meter:assumed`` (``meter``'s bars from its start: ``meter:given-from-start``)."""
    import librosa
    import symusic

    from tunesmith.music.melody import release_overlaps
    from tunesmith.music.meter import check_meter, estimate_meter
    from tunesmith.music.score import DEFAULT_TPQ, Meta, Score
    from tunesmith.music.texture import RECORDED_CHORD_SHARE, chord_onset_share

    check_meter(meter)
    p = Path(path)
    y = load_audio(p, max_minutes=max_minutes)  # the checks (size, length, silence) before the model
    notes = basic_pitch_notes(p, onset_threshold=onset_threshold, frame_threshold=frame_threshold,
                              min_note_ms=min_note_ms, refine=not raw_onsets)
    if not notes:
        raise BadInputError(p, "no notes were heard in this recording")
    starts = np.unique(np.round([n[0] for n in notes], 3))
    if len(starts) >= 4:
        qpm = estimate_tempo(starts, notes=np.array(notes, float))
    else:  # too few notes to judge a tempo from: the beat tracker's reading
        qpm = float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=ANALYSIS_SR)[0])[0]) or 120.0
    qpm = float(np.clip(qpm, 30, 300))
    est = estimate_meter(np.array(notes, float), qpm, meter=meter)
    tpq = DEFAULT_TPQ
    first = min(n[0] for n in notes)
    if est is None:  # bars from the recording's start, as before
        num, den = (int(x) for x in (meter or "4/4").split("/"))
        origin, tag = 0.0, "meter:given-from-start" if meter else "meter:assumed"
    else:
        num, den = (int(x) for x in est.time_signature.split("/"))
        qpm = float(np.clip(est.qpm, 30, 300))
        origin = est.downbeat_seconds  # at or before the first note: the bar line of bar 1 (a pickup's)
        tag = f"meter:{'given' if meter else 'estimated'}:{est.confidence:.2f}"
        if origin > first + 0.05:  # estimate_meter puts it at or before the first note (a beat's tracking
            origin -= est.bar_seconds * np.ceil((origin - first) / est.bar_seconds)  # may put it a hair after)
        origin = min(origin, first)
    bar = int(round(num * 4 * tpq / den))
    music = symusic.Score(tpq)
    music.tempos.append(symusic.Tempo(0, qpm))
    music.time_signatures.append(symusic.TimeSignature(0, num, den))
    track = symusic.Track("Transcription", 0, False)
    per_sec = tpq * qpm / 60
    for start, end, pitch, amp in sorted(notes, key=lambda n: (n[0], n[2])):
        s = int(round((start - origin) * per_sec))
        d = max(1, int(round((end - start) * per_sec)))
        track.notes.append(symusic.Note(max(s, 0), d, pitch, int(min(127, max(1, round(127 * amp))))))
    # the last notes ring on (a release, a room): a tail of under half a bar past a bar line, with no
    # note struck after it, is sound, not another bar
    ends = np.array([n.end for n in track.notes])
    line = int(ends.max()) // bar * bar
    if 0 < ends.max() - line < bar // 2 and max(n.time for n in track.notes) < line:
        for n in track.notes:
            if n.end > line:
                n.duration = line - n.time
    music.tracks.append(track)
    tags = ["transcribed", tag]
    a = track.notes.numpy()
    if chord_onset_share(a["time"], a["pitch"], tpq) < RECORDED_CHORD_SHARE:
        # one line played or sung: a note heard ringing on into the next (a flute's breath, a piano's
        # decay, the room) is released where the next begins, as the player did and as a score writes it
        release_overlaps(music, single_line=True)
        tags.append("one-line")
    cents = recording_tuning(p)
    if abs(cents) > RETUNE_MIN_CENTS:  # said where it mattered: the notes are the nearest semitones of A440
        tags.append(f"tuning:{cents:+.0f}")
    return Score(music, Meta(title=p.stem, source=str(p), tempo=qpm, time_signature=f"{num}/{den}",
                             tags=tags, audio_offset=round(float(origin), 4)))
