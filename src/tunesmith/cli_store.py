"""CLI: the store (``db``) and the recommender (``recommend``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.errors import OptionError


def _db_url(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db-url", help="database URL (default $TUNESMITH_DB_URL, else SQLite under $TUNESMITH_HOME); "
                   "PostgreSQL: postgresql://user@host/db")


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("db", help="the store: listeners, pieces, listening events (SQLite or PostgreSQL)",
                       description="The store the recommender and the studio share.")
    dsub = d.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    s = dsub.add_parser("upgrade", help="create or migrate the schema (Alembic)")
    _db_url(s)
    s.set_defaults(func=cmd_db_upgrade)
    s = dsub.add_parser("status", help="schema version and counts")
    _db_url(s)
    s.set_defaults(func=cmd_db_status)
    s = dsub.add_parser("add-corpus", help="register bundled corpus pieces (default: all of them) as pieces")
    s.add_argument("corpora", nargs="*")
    s.add_argument("--quiet", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_db_add_corpus)
    s = dsub.add_parser("import-events", help="import listening events from a CSV "
                        "(timestamp,listener,piece,event,value,other_piece); all or nothing")
    s.add_argument("csv")
    s.add_argument("--source", help="label stored with the events (default: 'import', or 'simulated:seed=S' "
                   "for a file written by 'recommend simulate')")
    _db_url(s)
    s.set_defaults(func=cmd_db_import)
    s = dsub.add_parser("export", help="write listeners.csv, pieces.csv and events.csv")
    s.add_argument("--out", required=True, help="folder")
    s.add_argument("--force", action="store_true", help="replace existing CSV files there")
    _db_url(s)
    s.set_defaults(func=cmd_db_export)

    r = sub.add_parser("recommend", help="recommendations from listening events, blended with content similarity",
                       description="Collaborative filtering (implicit ALS) blended with content similarity "
                       "(MIR features).")
    rsub = r.add_subparsers(dest="rec_command", required=True, metavar="COMMAND")
    s = rsub.add_parser("fit", help="fit the recommender on every event in the store")
    s.add_argument("--out", help="model folder (default $TUNESMITH_HOME/recommender)")
    s.add_argument("--quiet", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_rec_fit)
    s = rsub.add_parser("for", help="recommendations for a listener, each with a reason")
    s.add_argument("listener")
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--model", help="model folder (default $TUNESMITH_HOME/recommender)")
    s.add_argument("--json", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_rec_for)
    s = rsub.add_parser("similar", help="pieces like a piece (by listeners and by sound)")
    s.add_argument("piece", help="a piece key, e.g. bach-chorales/bwv269")
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--model")
    s.add_argument("--json", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_rec_similar)
    s = rsub.add_parser("evaluate", help="offline evaluation on a time-ordered split, beside baselines")
    s.add_argument("--split", type=float, default=0.8, help="share of events (by time) for training")
    s.add_argument("--max-listeners", type=int, help="evaluate a random sample of listeners")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_rec_evaluate)
    s = rsub.add_parser("simulate", help="write a SIMULATED listening log over the store's pieces",
                        description="Simulated listeners with latent tastes over real content features "
                        "(corpus, mode, meter, density, register), a popularity skew and noise. Writes "
                        "OUT/events.csv for 'tunesmith db import-events' and OUT/simulation.json.")
    s.add_argument("--listeners", type=int, default=1000)
    s.add_argument("--events-per-listener", type=float, default=100.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--force", action="store_true")
    s.add_argument("--quiet", action="store_true")
    _db_url(s)
    s.set_defaults(func=cmd_rec_simulate)


def cmd_db_upgrade(a) -> int:
    from tunesmith.store import db

    v = db.upgrade(a.db_url)
    print(f"{db.shown_url(a.db_url)}: schema version {v}")
    return 0


def cmd_db_status(a) -> int:
    from tunesmith.store import db
    from tunesmith.store.events import counts

    c = counts(a.db_url)
    print(f"{db.shown_url(a.db_url)}: schema version {db.current_version(a.db_url)}; "
          f"{c['listeners']} listeners, {c['pieces']} pieces, {c['events']} events")
    return 0


def cmd_db_add_corpus(a) -> int:
    from tunesmith.music.corpora import CORPORA
    from tunesmith.recommend.catalogue import DEFAULT_CORPORA, add_corpora

    names = a.corpora or list(DEFAULT_CORPORA)
    for n in names:
        if n not in CORPORA:
            raise OptionError("CORPUS", f"unknown corpus '{n}'; known: {', '.join(CORPORA)}")
    for n, k in add_corpora(names, url=a.db_url, progress=not a.quiet).items():
        print(f"{n}: {k} pieces added")
    return 0


def cmd_db_import(a) -> int:
    from tunesmith.store.events import import_events

    source = a.source
    sim = Path(a.csv).with_name("simulation.json")
    if source is None and sim.is_file():
        try:
            info = json.loads(sim.read_text())
            if info.get("simulated"):
                source = f"simulated:seed={info.get('seed')}"
        except (OSError, ValueError):
            pass
    rep = import_events(a.csv, url=a.db_url, source=source or "import")
    print(f"imported {rep.events} events ({rep.new_listeners} new listeners) from {a.csv} as '{rep.source}'")
    return 0


def cmd_db_export(a) -> int:
    from tunesmith.store.events import export

    for p in export(a.out, url=a.db_url, force=a.force):
        print(f"wrote {p}")
    return 0


def cmd_rec_fit(a) -> int:
    from tunesmith.recommend.service import fit

    _, cfg = fit(a.db_url, a.out, progress=not a.quiet)
    sim = " (SIMULATED events)" if cfg.get("simulated_events") else ""
    print(f"fitted on {cfg['events']} events{sim}: {cfg['listeners']} listeners × {cfg['items']} pieces, "
          f"{cfg['nonzeros']} listener-piece pairs, {cfg['fit_seconds']} s")
    return 0


def _check_n(n: int) -> None:
    if not 1 <= n <= 1000:
        raise OptionError("--n", f"must be between 1 and 1000, got {n}")


def _print_recs(recs, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_dict() for r in recs], indent=1))
        return
    for i, r in enumerate(recs, 1):
        print(f"{i:3}. {r.key}  — {r.reason}")


def cmd_rec_for(a) -> int:
    from tunesmith.recommend.service import Service

    _check_n(a.n)
    _print_recs(Service(a.db_url, a.model).for_listener(a.listener, a.n), a.json)
    return 0


def cmd_rec_similar(a) -> int:
    from tunesmith.recommend.service import Service

    _check_n(a.n)
    _print_recs(Service(a.db_url, a.model).similar(a.piece, a.n), a.json)
    return 0


def cmd_rec_evaluate(a) -> int:
    from tunesmith.recommend.evaluate import MODELS, evaluate

    if not 0.1 <= a.split <= 0.95:
        raise OptionError("--split", f"must be between 0.1 and 0.95, got {a.split}")
    res = evaluate(a.db_url, split=a.split, max_listeners=a.max_listeners, progress=not a.quiet)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    label = "SIMULATED listeners" if res["simulated"] else "logged listeners"
    print(f"{res['listeners']} {label} with held-out likes, {res['items']} pieces, {res['events']} events "
          f"(first {res['split_quantile']:.0%} by time for training; fit {res['fit_seconds']} s)")
    print(f"  {'model':12} {'P@10':>7} {'R@10':>7} {'NDCG@10':>8} {'MAP@10':>7} {'coverage':>9} {'novelty':>8}")
    for m in MODELS:
        x = res["models"][m]
        if "ndcg@10" not in x:
            continue
        print(f"  {m:12} {x['precision@10']:7.4f} {x['recall@10']:7.4f} {x['ndcg@10']:8.4f} {x['map@10']:7.4f} "
              f"{x['coverage']:9.3f} {x['novelty']:8.2f}")
    c = res["cold_start"]
    if c.get("listeners"):
        print(f"  cold start ({c['listeners']} new listeners, 3 likes each): NDCG@10 hybrid "
              f"{c['hybrid']['ndcg@10']:.4f}, content {c['content']['ndcg@10']:.4f}, popularity "
              f"{c['popularity']['ndcg@10']:.4f}")
    return 0


def cmd_rec_simulate(a) -> int:
    from tunesmith.recommend.simulate import simulate_store, write_simulation

    if not 1 <= a.listeners <= 1_000_000:
        raise OptionError("--listeners", f"must be between 1 and 1,000,000, got {a.listeners}")
    if not 1 <= a.events_per_listener <= 100_000:
        raise OptionError("--events-per-listener", f"must be between 1 and 100,000, got {a.events_per_listener}")
    out = Path(a.out)
    if (out / "events.csv").exists() and not a.force:
        raise OptionError("--out", f"'{out / 'events.csv'}' exists; choose another folder or add --force")
    events, taste, world = simulate_store(a.db_url, a.listeners, events_per_listener=a.events_per_listener,
                                          seed=a.seed, progress=not a.quiet)
    for p in write_simulation(out, events, taste, world, seed=a.seed, force=a.force):
        print(f"wrote {p}")
    print(f"{len(events)} SIMULATED events from {a.listeners} listeners over {len(world.keys)} pieces")
    return 0
