"""Prepared datasets: manifest, skipped report, stable splits, incremental re-runs."""

import json
import shutil

import pytest

from tunesmith.music.corpora import CORPORA, corpus_files, count_pieces
from tunesmith.music.dataset import Dataset, prepare, split_of


def _copy_chorales(dst, n, start=0):
    dst.mkdir(parents=True, exist_ok=True)
    for f in corpus_files("bach-chorales")[start : start + n]:
        shutil.copy(f, dst / f.name)


def test_prepare_folder_manifest_and_skips(tmp_path):
    src = tmp_path / "music"
    _copy_chorales(src, 6)
    (src / "broken.mid").write_bytes(b"garbage")
    (src / "tunes.abc").write_text("X:1\nT:A\nK:C\nCDEF|G4|]\n\nX:2\nT:B\nK:G\nGABc|d4|]\n")
    r = prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    assert r.n_pieces == 8 and r.n_skipped == 1
    ds = Dataset(tmp_path / "ds")
    e = ds.entries[0]
    for k in ("id", "source", "hash", "meta", "split", "n_notes"):
        assert k in e
    skipped = json.loads((tmp_path / "ds" / "skipped.json").read_text())
    assert skipped[0]["where"].endswith("broken.mid") and "MIDI" in skipped[0]["why"]
    score = ds.load(e)
    assert score.n_notes == e["n_notes"]


def test_split_stable_when_files_added_and_cache_reused(tmp_path):
    src = tmp_path / "music"
    _copy_chorales(src, 5)
    prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    before = {e["hash"]: e["split"] for e in Dataset(tmp_path / "ds").entries}
    _copy_chorales(src, 5, start=5)
    r = prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    assert r.n_parsed == 5 and r.n_cached == 5  # only the new files were parsed
    after = {e["hash"]: e["split"] for e in Dataset(tmp_path / "ds").entries}
    assert all(after[h] == s for h, s in before.items())
    r2 = prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    assert r2.n_parsed == 0


def test_split_of_is_deterministic_and_balanced():
    import hashlib

    hs = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    splits = [split_of(h) for h in hs]
    assert splits == [split_of(h) for h in hs]
    assert 0.07 < splits.count("test") / 5000 < 0.13 and 0.07 < splits.count("valid") / 5000 < 0.13


def test_corpora_listed_with_counts():
    for name in ("bach-chorales", "essen", "oneills-1850", "ryans-mammoth", "palestrina", "monteverdi", "folk"):
        assert name in CORPORA
    assert count_pieces(corpus_files("bach-chorales")) > 300
    assert count_pieces(corpus_files("essen")) > 8000
    assert count_pieces(corpus_files("folk")) == sum(count_pieces(corpus_files(c)) for c in ("essen", "oneills-1850", "ryans-mammoth"))


@pytest.mark.slow
def test_prepare_bundled_corpus_in_parallel_and_info(tmp_path, cli):
    out = tmp_path / "chorales"
    r = cli("data", "prepare", "bach-chorales", "--out", out, "--quiet")  # its workers are processes
    assert r.returncode == 0, r.stderr
    ds = Dataset(out)
    s = ds.summary()
    assert s["pieces"] > 300 and s["splits"]["train"] > s["splits"]["test"] > 0
    r = cli("data", "info", out)
    assert "pitch range" in r.stdout and "4/4" in r.stdout


def _folder(tmp_path, n=8):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for f in corpus_files("bach-chorales")[:n]:
        shutil.copy(f, src / f.name)
    return src


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_worker_that_dies_or_hangs_costs_one_file_not_the_run(tmp_path, monkeypatch, fault):
    """A worker killed on a file (here: kill -9 from inside) or stuck past the time limit is
    noticed: that file is skipped with the reason, the rest is prepared, and the next
    prepare tries the file again."""
    from tunesmith.music.io import Limits

    src = _folder(tmp_path)
    victim = sorted(src.iterdir())[3].name
    monkeypatch.setenv("TUNESMITH_FAULT_FILE", f"{fault}:{victim}")
    r = prepare(str(src), tmp_path / "ds", workers=2, progress=False, limits=Limits(max_parse_seconds=2))
    assert r.n_pieces == 7 and r.n_skipped == 1
    why = json.loads((tmp_path / "ds" / "skipped.json").read_text())[0]
    assert why["where"].endswith(victim)
    assert ("died" in why["why"]) if fault == "kill" else ("still parsing after 9 s" in why["why"])
    monkeypatch.delenv("TUNESMITH_FAULT_FILE")
    again = prepare(str(src), tmp_path / "ds", workers=2, progress=False, limits=Limits(max_parse_seconds=2))
    assert again.n_pieces == 8 and again.n_parsed == 1 and again.n_skipped == 0


def test_an_unreadable_file_is_skipped_with_its_reason(tmp_path, monkeypatch):
    from tunesmith.music import dataset

    src = _folder(tmp_path, 3)
    locked = sorted(src.iterdir())[1]
    real = dataset.sha256_file

    def no_permission(path):
        if path == locked:  # as root, chmod 000 does not stop a read: refuse it here as the OS would
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(dataset, "sha256_file", no_permission)
    r = prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    assert r.n_pieces == 2 and r.n_skipped == 1
    assert json.loads((tmp_path / "ds" / "skipped.json").read_text()) == [
        {"where": str(locked), "why": "cannot read: Permission denied"}]


@pytest.mark.slow
def test_two_prepares_of_one_dataset_at_once(tmp_path):
    """Two real processes prepare the same dataset folder at the same moment: both succeed
    (the second waits for the first and reuses its shards) and the dataset is whole."""
    import os
    import subprocess
    import sys

    src = _folder(tmp_path, 12)
    env = dict(os.environ, TUNESMITH_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "tunesmith", "data", "prepare", str(src), "--out", str(tmp_path / "ds"), "--quiet",
           "--workers", "2"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert all("12 pieces from 12 files" in o[0] for o in outs)
    assert sum("waiting for it to finish" in o[1] for o in outs) <= 1
    ds = Dataset(tmp_path / "ds")
    assert len(ds.entries) == 12 and all(len(ds.load(e).music.tracks) == 4 for e in ds.entries)


def test_a_manifest_cannot_send_reads_outside_the_dataset(tmp_path):
    from tunesmith.errors import BadInputError

    src = _folder(tmp_path, 3)
    prepare(str(src), tmp_path / "ds", workers=1, progress=False)
    (tmp_path / "secret.bin").write_bytes(b"MThd-not-yours")
    m = tmp_path / "ds" / "manifest.jsonl"
    lines = [json.loads(x) for x in m.read_text().splitlines()]
    lines[0]["shard"] = "../../secret"
    m.write_text("".join(json.dumps(e) + "\n" for e in lines))
    ds = Dataset(tmp_path / "ds")
    with pytest.raises(BadInputError, match="names a shard"):
        ds.load(ds.entries[0])
    assert ds.load(ds.entries[1]).n_notes > 0


def test_a_corpus_installed_elsewhere_is_the_same_data(tmp_path):
    """The manifest hash does not depend on where the files are (another virtual environment,
    another checkout): a model's copy guard and a run's --resume recognise the data. The hash
    of the manifest as written (what earlier versions recorded) still names it on the machine
    it was made on, and a piece added changes both hashes and the split hash."""
    from tunesmith.music.dataset import split_hash

    for where in ("a", "b/deeper"):
        _copy_chorales(tmp_path / where / "music", 4)
        prepare(str(tmp_path / where / "music"), tmp_path / where / "ds", workers=1, progress=False)
    a, b = Dataset(tmp_path / "a" / "ds"), Dataset(tmp_path / "b/deeper" / "ds")
    assert a.entries[0]["source"] != b.entries[0]["source"]  # the manifest keeps the real paths
    assert a.manifest_hash == b.manifest_hash and a.split_hash == b.split_hash == split_hash(a.entries)
    assert a.info["manifest_sha256_as_written"] != b.info["manifest_sha256_as_written"]
    assert a.is_manifest(a.info["manifest_sha256_as_written"]) and not a.is_manifest(b.info["manifest_sha256_as_written"])
    assert a.hashes("dataset_") == {"dataset_manifest_sha256": a.manifest_hash, "dataset_split_sha256": a.split_hash,
                                    "dataset_manifest_sha256_as_written": a.info["manifest_sha256_as_written"]}
    _copy_chorales(tmp_path / "a" / "music", 1, start=4)
    prepare(str(tmp_path / "a" / "music"), tmp_path / "a" / "ds", workers=1, progress=False)
    c = Dataset(tmp_path / "a" / "ds")
    assert c.manifest_hash != a.manifest_hash and c.split_hash != a.split_hash


def test_the_key_signature_is_the_one_the_parts_agree_on(tmp_path):
    """A MusicXML file whose first part has another signature than the other three (music21's
    bwv62.6: a soprano without the two flats) states the signature most parts have."""
    from music21 import key, meter, note, stream

    from tunesmith.music.io import load_score

    sc = stream.Score()
    for i, (sig, pitches) in enumerate(((key.KeySignature(0), "G4 B-4 A4 G4"), (key.Key("B-"), "D4 D4 F#4 D4"),
                                        (key.Key("B-"), "B-3 C4 D4 B-3"), (key.Key("B-"), "G2 G2 D3 G2"))):
        p = stream.Part(id=f"P{i}")
        m = stream.Measure(number=1)
        m.append([sig, meter.TimeSignature("4/4")] + [note.Note(x) for x in pitches.split()])
        p.append(m)
        sc.insert(0, p)
    f = tmp_path / "disagree.musicxml"
    sc.write("musicxml", fp=str(f))
    s = load_score(f)
    assert [(k.key, k.tonality) for k in s.music.key_signatures] == [(-2, 0)]
    assert s.meta.key == "Bb major"
