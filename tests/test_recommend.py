"""The recommender: fit on the store, recommend with reasons, cold start, new pieces,
incremental events, the simulator and the offline evaluation."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from conftest import make_score
from tunesmith.cli import main
from tunesmith.music.io import save_midi
from tunesmith.store import db
from tunesmith.store.events import add_pieces, log_event

Q = 480


def _waltz(seed: int):
    """Style A: a major-key melody in 3/4, eighths and quarters, high."""
    rng = np.random.default_rng(seed)
    scale = [72, 74, 76, 77, 79, 81, 83, 84]
    notes, t = [], 0
    for _ in range(24):
        d = int(rng.choice([Q // 2, Q]))
        notes.append((t, d, int(rng.choice(scale))))
        t += d
    return make_score([notes], time_sigs=((0, 3, 4),))


def _hymn(seed: int):
    """Style B: four voices in A minor, half notes, 4/4."""
    rng = np.random.default_rng(seed)
    chords = [(69, 64, 60, 45), (71, 68, 64, 52), (72, 69, 64, 57), (74, 69, 65, 50), (76, 71, 68, 52)]
    voices = [[], [], [], []]
    for b in range(8):
        ch = chords[int(rng.integers(len(chords)))]
        for v in range(4):
            voices[v].append((b * 2 * Q, 2 * Q, ch[v]))
    return make_score(voices)


@pytest.fixture
def store(tmp_path):
    """40 pieces of two styles; 20 listeners who like only style A, 20 only style B."""
    url = f"sqlite:///{tmp_path / 'rec.db'}"
    rows = []
    for i in range(20):
        for style, make in (("waltz", _waltz), ("hymn", _hymn)):
            p = tmp_path / f"{style}{i}.mid"
            save_midi(make(i), p)
            rows.append({"key": f"{style}/{i}", "kind": "upload", "title": f"{style} {i}", "path": str(p),
                         "meta": {"meter": "3/4" if style == "waltz" else "4/4",
                                  "key": "C major" if style == "waltz" else "A minor"}})
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with db.session(url) as s:
        add_pieces(s, rows[:-2])  # the last waltz and hymn arrive after the fit
        for u in range(40):
            style = "waltz" if u < 20 else "hymn"
            for j, i in enumerate(rng.choice(18, 8, replace=False)):
                log_event(s, f"l{u}", f"{style}/{i}", "like", ts=t0 + timedelta(hours=u * 10 + j))
                log_event(s, f"l{u}", f"{style}/{i}", "complete", ts=t0 + timedelta(hours=u * 10 + j))
            other = "hymn" if style == "waltz" else "waltz"
            log_event(s, f"l{u}", f"{other}/{int(rng.integers(18))}", "skip", ts=t0 + timedelta(hours=u * 10 + 9))
    return url, rows, tmp_path


def test_recommendations_follow_taste_with_reasons_cold_start_new_pieces_and_new_events(store, capsys):
    from tunesmith.recommend.service import Service

    url, rows, tmp = store
    model = tmp / "model"
    assert main(["recommend", "fit", "--db-url", url, "--out", str(model), "--quiet"]) == 0
    assert "fitted on" in capsys.readouterr().out
    # a waltz lover gets waltzes, not what they heard, each with a reason
    assert main(["recommend", "for", "l3", "--n", "5", "--db-url", url, "--model", str(model), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 5 and all(r["piece"].startswith("waltz/") for r in recs)
    assert all(r["reason"].startswith("because you liked waltz/") for r in recs)
    with db.session(url) as s:
        add_pieces(s, rows[-2:])  # two pieces nobody has heard, added after the fit
        # a brand-new listener with three likes of hymns
        for i in range(3):
            log_event(s, "newcomer", f"hymn/{i}", "like")
    svc = Service(url, model)
    new = svc.for_listener("newcomer", 6)
    assert all(r.key.startswith("hymn/") for r in new)
    assert "hymn/19" in [r.key for r in svc.for_listener("newcomer", 17)]  # the unheard new hymn is reachable
    # incremental: a new event changes the next recommendation without a refit
    first = svc.for_listener("newcomer", 3)[0].key
    with db.session(url) as s:
        log_event(s, "newcomer", first, "like")
    assert first not in [r.key for r in Service(url, model).for_listener("newcomer", 10)]
    # similar pieces: same style first
    sim = svc.similar("waltz/0", 5)
    assert all(r.key.startswith("waltz/") for r in sim) and "waltz/0" not in [r.key for r in sim]


def test_recommend_errors_are_one_line(store, capsys):
    url, _, tmp = store
    assert main(["recommend", "for", "l1", "--db-url", url, "--model", str(tmp / "none")]) == 2
    assert "run 'tunesmith recommend fit' first" in capsys.readouterr().err
    assert main(["recommend", "fit", "--db-url", url, "--out", str(tmp / "m"), "--quiet"]) == 0
    capsys.readouterr()
    for argv, msg in ((["recommend", "for", "nobody"], "no such listener"),
                      (["recommend", "similar", "nope/1"], "no such piece"),
                      (["recommend", "for", "l1", "--n", "0"], "--n")):
        assert main(argv + ["--db-url", url, "--model", str(tmp / "m")]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_simulated_log_imports_and_the_hybrid_beats_random_and_says_simulated(store, capsys):
    url, _, tmp = store
    out = tmp / "sim"
    assert main(["recommend", "simulate", "--listeners", "400", "--events-per-listener", "12", "--seed", "3",
                 "--out", str(out), "--db-url", url, "--quiet"]) == 0
    capsys.readouterr()
    info = json.loads((out / "simulation.json").read_text())
    assert info["simulated"] is True and info["listeners"] == 400
    header = (out / "events.csv").read_text().splitlines()[0]
    assert header == "timestamp,listener,piece,event,value,other_piece"
    assert main(["db", "import-events", str(out / "events.csv"), "--db-url", url]) == 0
    assert "as 'simulated:seed=3'" in capsys.readouterr().out
    assert main(["recommend", "evaluate", "--db-url", url, "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["simulated"] is True and res["listeners"] > 20
    m = res["models"]
    assert m["hybrid"]["ndcg@10"] > m["random"]["ndcg@10"]
    for name in ("hybrid", "als", "content", "item-knn", "popularity", "random"):
        assert 0 <= m[name]["precision@10"] <= 1 and 0 < m[name]["coverage"] <= 1
    assert main(["recommend", "evaluate", "--db-url", url, "--quiet"]) == 0
    assert "SIMULATED listeners" in capsys.readouterr().out


def test_generate_for_a_listener_keeps_the_best_candidates_and_records_them(store, capsys):
    from sqlalchemy import select

    from tunesmith.store.models import Piece

    url, _, tmp = store
    assert main(["recommend", "fit", "--db-url", url, "--quiet"]) == 0  # to $TUNESMITH_HOME/recommender
    out = tmp / "gen"
    argv = ["generate", "--for", "l2", "--model", "folk", "--candidates", "3", "--num", "1", "--formats", "mid",
            "--bars", "4", "--out", str(out), "--db-url", url]
    assert main(argv) == 0
    assert "best 1 of 3 for l2" in capsys.readouterr().out
    info = json.loads(next(out.glob("*.json")).read_text())
    assert info["for"] == "l2" and info["settings"]["model"] == "folk" and info["rank_among_candidates"] == 1
    with db.session(url) as s:
        gen = s.scalars(select(Piece).where(Piece.kind == "generated")).all()
    assert len(gen) == 1 and gen[0].model == "folk" and gen[0].files == info["files"]
    assert main(argv) == 2  # earlier results are not overwritten
    assert "exists" in capsys.readouterr().err
    assert main(argv[:-2] + ["--key", "C major", "--force"]) == 2
    assert "chosen per candidate" in capsys.readouterr().err


def test_fine_tune_a_bundled_model_on_a_listeners_likes(store, capsys):
    from tunesmith.fileio import tunesmith_home

    url, _, tmp = store
    out = tmp / "ft"
    assert main(["train", "--from", "folk", "--data", "liked:l3", "--db-url", url, "--out", str(out),
                 "--max-steps", "2", "--epochs", "1", "--quiet"]) == 0
    liked = sorted((tunesmith_home() / "liked" / "l3").glob("*.mid"))
    assert len(liked) == 8  # l3 liked eight waltzes; the skipped hymn is not training data
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["family"] == "transformer" and cfg["fine_tuned_from"].endswith("folk")
    assert main(["generate", "--model", str(out), "--out", str(tmp / "g"), "--bars", "2", "--formats", "mid"]) == 0
    capsys.readouterr()
    for argv, msg in ((["--from", "chorale-cnn", "--data", "liked:l3"], "fine-tunes token models"),
                      (["--from", "folk", "--data", "liked:nobody"], "no listening events"),
                      (["--from", "folk", "--layers", "2", "--data", "liked:l3"], "size comes from --from"),
                      (["--data", "folk", "--db-url", url, "--family", "lstm"], "only applies with --data liked")):
        extra = [] if "--db-url" in argv else ["--db-url", url]
        assert main(["train", *argv, *extra, "--out", str(tmp / "x")]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1


def test_a_saved_recommender_embeds_new_pieces_as_it_embedded_its_catalogue(tmp_path):
    import scipy.sparse as sp

    from tunesmith.mir.features import N_FEATURES
    from tunesmith.recommend.model import Interactions, Recommender

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, N_FEATURES)) @ rng.normal(size=(N_FEATURES, N_FEATURES)) * 0.1
    keys = [f"p/{i}" for i in range(300)]
    rec = Recommender.fit(keys, x, Interactions(["a"], sp.csr_matrix((1, 300), dtype=np.float32)))
    back = Recommender.load(rec.save(tmp_path / "rec"))
    assert np.allclose(back.space.embed(x[:20]), rec.content[:20], atol=1e-5)
    assert np.allclose(back.content, rec.content) and back.keys == keys
