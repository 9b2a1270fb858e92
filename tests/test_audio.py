"""The note data set, the conditional WaveGAN, its evaluation and the audio CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from tests.conftest import make_score

from tunesmith.models.wavegan import (
    WaveGAN,
    WaveGANConfig,
    phase_shuffle,
    receptive_field,
    wave_gradient_penalty,
)
from tunesmith.music.notes import AudioDataParams, build, load_split

SMALL = {"d": 2, "length": 4096, "n_pitches": 3, "pitch_lo": 60, "n_instruments": 2, "sample_rate": 16000}


def test_dataset_renders_the_asked_pitch_and_is_incremental(notes):
    import librosa

    info = json.loads((notes / "dataset.json").read_text())
    assert sum(info["counts"].values()) == 2 * 3 * 2
    rows = [json.loads(x) for x in (notes / "manifest.jsonl").read_text().splitlines()]
    assert {(r["program"], r["pitch"], r["velocity"]) for r in rows} == {
        (p, q, v) for p in (0, 40) for q in (60, 61, 62) for v in (60, 100)}
    for split in ("train", "valid", "test"):
        d = load_split(notes, split)
        for clip, pitch in zip(d.audio, d.pitch):
            assert clip.shape == (4096,) and np.abs(clip).max() > 0.01
            f0, _, _ = librosa.pyin(clip[:2400], fmin=100, fmax=800, sr=16000, frame_length=1024)
            assert abs(librosa.hz_to_midi(np.nanmedian(f0)) - pitch) < 0.5
    again = build(notes, AudioDataParams(programs=[0, 40], pitch_lo=60, pitch_hi=62, velocities=[60, 100],
                                         length=4096, hold=0.15), progress=False)
    assert again["rendered_programs"] == 0
    more = build(notes, AudioDataParams(programs=[0, 40, 73], pitch_lo=60, pitch_hi=62, velocities=[60, 100],
                                        length=4096, hold=0.15), progress=False)
    assert more["rendered_programs"] == 1 and sum(more["counts"].values()) == 18
    build(notes, AudioDataParams(programs=[0, 40], pitch_lo=60, pitch_hi=62, velocities=[60, 100], length=4096,
                                 hold=0.15), progress=False)


def test_generator_and_critic_shapes_and_conditioning():
    torch.manual_seed(0)
    m = WaveGAN(WaveGANConfig(**SMALL))
    z = torch.randn(3, 100)
    with torch.no_grad():
        x = m.G(z, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0]))
        y = m.G(z, torch.tensor([2, 1, 2]), torch.tensor([0, 1, 1]))
    assert x.shape == (3, 4096) and float(x.std()) > 0  # tanh output: the range holds by construction
    assert m.D(x, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])).shape == (3,)
    assert not torch.allclose(x[0], y[0]) and torch.allclose(x[1], y[1]) and not torch.allclose(x[2], y[2])
    real = torch.randn(3, 4096) * 0.1
    gp = wave_gradient_penalty(m.D, real, x, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0]))
    assert torch.isfinite(gp)


def test_receptive_field_of_the_critic():
    D = WaveGAN(WaveGANConfig(**{**SMALL, "phase_shuffle": 0, "length": 16384})).D
    rf = receptive_field()
    assert rf == 4**5 + 21 * (4**4 + 4**3 + 4**2 + 4 + 1) == 8185  # 0.51 s at 16 kHz
    # measured: the input samples that reach one interior output of the last convolution
    x = torch.zeros(1, 16384, requires_grad=True)
    h = x.unsqueeze(1)
    for conv in D.convs:
        h = conv(h)
    h[0, :, 5].sum().backward()
    touched = np.flatnonzero(x.grad[0].numpy() != 0)
    assert touched[-1] - touched[0] + 1 == rf


def test_phase_shuffle():
    x = torch.arange(40, dtype=torch.float32).view(2, 2, 10)
    assert torch.equal(phase_shuffle(x, 0), x)
    g = torch.Generator().manual_seed(3)
    y = phase_shuffle(x, 2, g)
    assert y.shape == x.shape
    ks = torch.randint(-2, 3, (2,), generator=torch.Generator().manual_seed(3))
    for b in range(2):
        k = int(ks[b])
        if k > 0:
            assert torch.equal(y[b, :, k:], x[b, :, :-k])
        elif k < 0:
            assert torch.equal(y[b, :, :k], x[b, :, -k:])
        else:
            assert torch.equal(y[b], x[b])


def _train(notes, out):
    return ["audio", "train", "--data", str(notes), "--out", str(out), "--family", "wavegan", "--width", "2",
            "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--n-critic", "2", "--checkpoint-every", "1",
            "--threads", "1", "--quiet"]


def _killed_then_resumed_equals_uninterrupted(train, notes, tmp_path, crash_step: int, cli) -> None:
    """Kill -9 a run at ``crash_step`` (a process of its own), resume it, and compare with a
    run never interrupted (both in this process)."""
    from safetensors.torch import load_file

    r = subprocess.run([sys.executable, "-m", "tunesmith", *train(notes, tmp_path / "a")], capture_output=True,
                       text=True, env=dict(os.environ, TUNESMITH_CRASH_AT_STEP=str(crash_step)))
    assert r.returncode != 0
    r = cli(*train(notes, tmp_path / "a"), "--resume")
    assert r.returncode == 0, r.stderr
    r = cli(*train(notes, tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    a = load_file(tmp_path / "a" / "last" / "model.safetensors")
    b = load_file(tmp_path / "b" / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_steps_resume_generate_and_play(notes, tmp_path, cli):
    _killed_then_resumed_equals_uninterrupted(_train, notes, tmp_path, 3, cli)
    hist = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["d_loss"]) and np.isfinite(h["g_loss"]) for h in hist)
    assert (tmp_path / "b" / "samples" / "epoch-002.png").read_bytes()[:4] == b"\x89PNG"

    out = tmp_path / "gen"
    r = cli("audio", "generate", "--model", tmp_path / "b", "--pitch", "61", "--instrument", "violin", "--num", "3",
            "--out", out)
    assert r.returncode == 0, r.stderr
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 3 and (out / "violin-61-seed0.png").is_file()
    for w in wavs:
        info = sf.info(str(w))
        assert info.samplerate == 16000 and info.frames == 4096 and info.channels == 1
    for args, problem in ((["--pitch", "90"], "outside the model's pitches 60-62"),
                          (["--instrument", "banjo"], "not one of this model's instruments"),
                          (["--instrument", "cello"], "not one of this model's instruments"),
                          (["--velocity", "90"], "wavegan model 'b' has no velocity control"),
                          (["--duration", "1.5"], "has no duration control"),
                          (["--num", "0"], "--num")):
        r = cli("audio", "generate", "--model", tmp_path / "b", "--out", tmp_path / "bad", *args)
        assert r.returncode == 2 and problem in r.stderr and "Traceback" not in r.stderr

    from tunesmith.music.io import save_midi

    tune = save_midi(make_score([[(0, 480, 60), (480, 480, 72), (960, 960, 48)]]), tmp_path / "t.mid")
    r = cli("audio", "play-score", tune, "--model", tmp_path / "b", "--out", tmp_path / "t.wav")
    assert r.returncode == 0, r.stderr
    audio, sr = sf.read(str(tmp_path / "t.wav"))
    assert sr == 16000 and 2.0 < len(audio) / sr < 2.3 and np.abs(audio).max() > 0.1  # 4 quarters at 120 bpm


def test_evaluation_figures(notes):
    from tunesmith.evaluate.notes import NDB, frechet, inception_score

    p = np.eye(4)[[0, 1, 2, 3] * 5]
    assert inception_score(p) == pytest.approx(4.0)
    assert inception_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 3))
    assert frechet(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet(a, a + 2) == pytest.approx(12, rel=1e-3)
    train = load_split(notes, "train").audio
    ndb = NDB(np.concatenate([train] * 5), k=3)
    assert ndb(np.concatenate([train] * 5))["ndb"] == 0
    assert ndb(np.zeros((40, train.shape[1])) + 0.001 * rng.normal(size=(40, train.shape[1])))["ndb"] >= 1


@pytest.mark.slow
def test_bundled_notes_gan_has_the_asked_pitch_and_real_timbre(tmp_path, cli):
    """The shipped DDSP GAN and classifier through `audio evaluate` on a fixed third of the
    note data set (every instrument and pitch, at velocity 80; the whole set is
    benchmarks/audio.py's): the notes have the asked pitch by the classifier and by pYIN, they
    are close to real notes (Fréchet distance within 2× the real-data ceiling, NDB/k ≤ 0.3)
    and their instrument family is heard far more often than from the same model untrained."""
    from tunesmith.music.notes import DEFAULT_PROGRAMS

    data = tmp_path / "notes"
    build(data, AudioDataParams(programs=list(DEFAULT_PROGRAMS), velocities=[80]), progress=False)
    r = cli("audio", "evaluate", "--data", str(data), "--out", str(tmp_path / "ev"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert res["family"] == "ddsp-gan"
    real, gen, init = res["real_heldout"], res["generated"], res["at_init"]
    assert real["pitch_accuracy"] > 0.9
    assert gen["pitch_accuracy"] >= 0.95 and gen["pyin_within_semitone"] >= 0.95
    assert gen["frechet_distance"] <= 2 * real["frechet_distance"] < init["frechet_distance"]
    assert gen["ndb_over_k"] <= 0.3
    assert gen["family_accuracy"] > init["family_accuracy"] + 0.2
    assert gen["family_accuracy"] >= 0.65  # this subset: 0.800; the whole set (BENCHMARKS.md): 0.708-0.742 over four draws
    assert (tmp_path / "ev" / "generated-vs-real.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_bundled_notes_gan_plays_a_bach_chorale(tmp_path, cli):
    from music21 import corpus

    chorale = str(corpus.getWork("bach/bwv269"))
    out = tmp_path / "bwv269-gan.wav"
    r = cli("audio", "play-score", chorale, "--instrument", "violin,flute,guitar,piano", "--out", str(out))
    assert r.returncode == 0, r.stderr
    audio, sr = sf.read(str(out))
    assert sr == 16000 and len(audio) / sr > 20 and 0.5 < np.abs(audio).max() <= 1.0
    assert np.isfinite(audio).all()


@pytest.mark.slow
def test_wavegan_baseline_beats_its_initialisation(tmp_path, cli):
    """The source document's design, kept as the baseline: after 75 CPU minutes it hears
    the instrument family better than untrained and is closer to real notes; its pitch
    is not asserted (BENCHMARKS.md: barely above the floor). On the fixed third of the note
    set the GAN test uses (velocity 80); the whole set is benchmarks/audio.py's."""
    from tunesmith.music.notes import DEFAULT_PROGRAMS

    data = tmp_path / "notes"
    build(data, AudioDataParams(programs=list(DEFAULT_PROGRAMS), velocities=[80]), progress=False)
    r = cli("audio", "evaluate", "--model", "notes-wavegan", "--data", data, "--no-pyin", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    gen, init = res["generated"], res["at_init"]
    assert res["family"] == "wavegan"
    assert gen["family_accuracy"] > init["family_accuracy"] + 0.15
    assert gen["frechet_distance"] < init["frechet_distance"]


# ---- the DDSP GAN: pitch by construction ------------------------------------------------

from tunesmith.models.ddsp import (  # noqa: E402
    DDSPGAN,
    DDSPGANConfig,
    harmonic_synth,
    multi_resolution_stft_loss,
    noise_synth,
)

TINY_DDSP = {"n_pitches": 3, "pitch_lo": 60, "n_instruments": 2, "hidden": 16, "n_harmonics": 8, "length": 4096,
             "hold": 0.15}


def test_harmonic_synth_equals_the_direct_sum_of_sinusoids():
    g = torch.Generator().manual_seed(0)
    amps = torch.rand(2, 6, 7, generator=g)
    f0 = torch.tensor([110.0, 443.3])
    hop, sr = 64, 16000
    y = harmonic_synth(f0, amps, hop, sr)
    n = 5 * hop
    t = torch.arange(n, dtype=torch.float64) / sr
    frame, alpha = torch.arange(n) // hop, (torch.arange(n) % hop).double() / hop
    a = amps.double()
    A = a[:, frame, :] * (1 - alpha)[None, :, None] + a[:, frame + 1, :] * alpha[None, :, None]
    k = torch.arange(1, 8, dtype=torch.float64)
    ref = (A * torch.sin(2 * np.pi * f0.double()[:, None, None] * k * t[None, :, None])).sum(-1)
    assert y.shape == (2, n)
    assert float((y.double() - ref).abs().max()) < 1e-4


def test_noise_synth_with_unit_gains_returns_the_noise():
    x = torch.randn(3, 2048, generator=torch.Generator().manual_seed(1))
    y = noise_synth(x, torch.ones(3, 2048 // 128 + 1, 17), 128)
    assert torch.allclose(y, x, atol=1e-5)
    silent = noise_synth(x, torch.zeros(3, 2048 // 128 + 1, 17), 128)
    assert float(silent.abs().max()) == 0


def test_untrained_ddsp_notes_already_have_the_asked_pitch():
    """Every partial sits on a multiple of the asked fundamental, whatever the weights:
    the spectrum's energy lies on the harmonic grid, and nothing is at or above Nyquist."""
    torch.manual_seed(0)
    m = DDSPGAN(DDSPGANConfig(n_pitches=49, pitch_lo=36, n_instruments=4, hidden=32, n_harmonics=96))
    for pitch in (36, 60, 69, 84):
        x = m.sample(torch.tensor([pitch]), torch.tensor([2]), torch.tensor([80.0]),
                     torch.Generator().manual_seed(pitch))[0]
        spec = np.abs(np.fft.rfft(x[:12000].numpy() * np.hanning(12000)))
        freqs = np.fft.rfftfreq(12000, 1 / 16000)
        f0 = 440 * 2 ** ((pitch - 69) / 12)
        k = np.rint(freqs / f0)
        on_grid = (np.abs(freqs - k * f0) < 4) & (k >= 1)
        energy = spec ** 2
        assert energy[on_grid].sum() / energy.sum() > 0.95, pitch
        assert spec[freqs >= 8000 - 20].max() < spec.max() * 1e-2


def test_ddsp_note_length_follows_duration_and_z_changes_the_sound():
    torch.manual_seed(0)
    m = DDSPGAN(DDSPGANConfig(**TINY_DDSP))
    g = torch.Generator().manual_seed(3)
    x = m.sample(torch.tensor([60, 61]), torch.tensor([0, 1]), torch.tensor([40.0, 120.0]), g, hold=torch.tensor(
        [0.5, 1.0]), length=20000)
    assert x.shape == (2, 20000) and torch.isfinite(x).all()
    a = m.sample(torch.tensor([60] * 2), torch.tensor([0] * 2), torch.tensor([80.0] * 2), torch.Generator().manual_seed(5))
    b = m.sample(torch.tensor([60] * 2), torch.tensor([0] * 2), torch.tensor([80.0] * 2), torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.allclose(a[0], a[1])
    assert float(multi_resolution_stft_loss(a[:1], a[:1])) == pytest.approx(0, abs=1e-6)


def test_ddsp_config_with_absurd_sizes_is_refused_before_allocating(tmp_path):
    from tunesmith.errors import TunesmithError
    from tunesmith.train.notes import build_note_model

    with pytest.raises(TunesmithError, match="implausible ddsp-gan sizes"):
        build_note_model("ddsp-gan", {**TINY_DDSP, "hidden": 10**7})


def _train_ddsp(notes, out):
    return ["audio", "train", "--data", str(notes), "--out", str(out), "--hidden", "16", "--harmonics", "8",
            "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4", "--warmup-steps", "2",
            "--checkpoint-every", "1", "--threads", "1", "--quiet"]


def test_ddsp_training_resumes_exactly_and_its_notes_play_a_score(notes, tmp_path, cli):
    _killed_then_resumed_equals_uninterrupted(_train_ddsp, notes, tmp_path, 4, cli)
    hist = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["valid_recon"]) and np.isfinite(h["d_loss"]) for h in hist)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["best_valid"] == pytest.approx(min(h["valid_recon"] for h in hist), abs=1e-4)
    assert (tmp_path / "b" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # an option of the other family is refused, not dropped
    r = cli("audio", "train", "--data", notes, "--out", tmp_path / "c", "--hidden", "16", "--width", "4")
    assert r.returncode == 2 and "--width" in r.stderr and "wavegan only" in r.stderr

    out = tmp_path / "gen"
    cmd = ["audio", "generate", "--model", str(tmp_path / "b"), "--pitch", "61",
           "--instrument", "violin", "--velocity", "100", "--duration", "0.5", "--num", "2", "--seed", "4",
           "--out", str(out)]
    r = cli(*cmd)
    assert r.returncode == 0, r.stderr
    wavs = sorted(out.glob("violin-61-seed4-*.wav"))
    assert len(wavs) == 2
    first = [w.read_bytes() for w in wavs]
    release = (4096 / 16000) - 0.15
    for w in wavs:
        info = sf.info(str(w))
        assert info.samplerate == 16000 and info.frames == round((0.5 + release) * 16000)
    r = cli(*cmd)
    assert [w.read_bytes() for w in wavs] == first  # the same seed, the same notes
    for args, problem in ((["--velocity", "0"], "--velocity"), (["--duration", "100"], "--duration"),
                          (["--instrument", "cello"], "not one of this model's instruments")):
        r = cli(*cmd[:-2], "--out", tmp_path / "bad", *args)
        assert r.returncode == 2 and problem in r.stderr and "Traceback" not in r.stderr

    from tunesmith.music.io import save_midi

    # two overlapping voices at 120 bpm, the second an octave outside the trained pitches
    tune = save_midi(make_score([[(0, 480, 60), (480, 480, 62), (960, 960, 61)],
                                 [(240, 1440, 48)]]), tmp_path / "t.mid")
    r = cli("audio", "play-score", tune, "--model", tmp_path / "b", "--instrument", "piano,violin",
            "--out", tmp_path / "t.wav")
    assert r.returncode == 0, r.stderr
    assert "piano, violin" in r.stdout
    audio, sr = sf.read(str(tmp_path / "t.wav"))
    assert sr == 16000 and 2.0 < len(audio) / sr < 2.4 and np.abs(audio).max() > 0.1
    # no click where a note starts or stops: every note's segment starts and ends at silence
    from tunesmith.generate.notes import NotesGAN

    gan = NotesGAN.load(tmp_path / "b")
    one = gan.play_score(make_score([[(480, 480, 61)]]), "violin")  # one quarter from 0.5 s, at 120 bpm
    start, end = int(0.5 * 16000), int((1.0 + gan.release_seconds()) * 16000)
    assert np.abs(one[:start + 1]).max() == 0 and np.abs(one[start + 1 : start + 33]).max() > 0
    ramp = np.abs(one[start : start + 32]) / np.abs(one).max()
    assert ramp[0] == 0 and ramp[1] < 0.1  # a 2 ms fade-in, not a jump
    assert np.abs(one[end - 1 :]).max() < 1e-6 and np.abs(one[end - 200 : end - 160]).max() > 0
    r = cli("audio", "play-score", tune, "--model", tmp_path / "b", "--instrument", "piano,,violin", "--out",
            tmp_path / "u.wav")
    assert r.returncode == 2 and "--instrument" in r.stderr and not (tmp_path / "u.wav").exists()
