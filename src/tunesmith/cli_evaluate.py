"""CLI: ``tunesmith evaluate GENERATED --reference R`` and ``tunesmith evaluate listening CSV…``."""

from __future__ import annotations

import argparse
import json

from tunesmith.errors import OptionError
from tunesmith.fileio import dumps, write_json


def add_commands(sub: argparse._SubParsersAction) -> None:
    from tunesmith.models.registry import bundled

    s = sub.add_parser(
        "evaluate", help="evaluate generated music against real music (or: evaluate listening CSV)",
        description="Compare a generated set with a reference set: per-piece metrics (mgeval, MusPy, tonal "
        "distance), KL/overlap per feature, Fréchet distance, a classifier two-sample test, originality "
        "against the training set and four-part voice-leading checks. 'tunesmith evaluate listening "
        "RATINGS.csv' analyses listening tests instead.")
    s.add_argument("generated", help="a folder of generated files, a file, a prepared dataset or a corpus name")
    s.add_argument("--reference", required=True, help="real music: a corpus name (e.g. bach-chorales), "
                   "a prepared dataset or a folder")
    s.add_argument("--train", help="the training set for the originality checks (default: the reference's "
                   "train split when the reference is a corpus or dataset)")
    s.add_argument("--reference-split", default="held-out", choices=["held-out", "all", "train", "valid", "test"],
                   help="which split of a reference dataset to compare with (default: held-out = valid and test)")
    s.add_argument("--crop-bars", type=int, help="fair yardstick: length in bars of the real crops (default: the "
                   "generated pieces' median length)")
    s.add_argument("--no-fair", action="store_true", help="skip the fair comparison with same-length crops")
    s.add_argument("--max-reference", type=int, default=2000,
                   help="subsample a larger reference to this many pieces (fixed seed; default 2000)")
    s.add_argument("--model", help="a token model whose NLL on the reference's test split to report: bundled "
                   f"{', '.join(bundled('tokens'))}, or a run / checkpoint folder")
    s.add_argument("--out", help="report folder (default: runs/evaluate-NAME)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true", help="print metrics.json's summary as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_evaluate)

    s = s.add_subcommand("listening", "statistics of listening tests (ratings and preferences)", description="Listening-test statistics: MOS with 95% CIs, Bradley–Terry "
                         "scores with significance tests, Krippendorff's alpha. CSV formats: rater,item,system,rating "
                         "or rater,item,system_a,system_b,winner (winner: a, b, tie or a system name).")
    s.add_argument("csv", nargs="+", help="ratings and/or preference CSV files")
    s.add_argument("--out", help="write listening.json and listening.md into this folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_listening)


def cmd_evaluate(a: argparse.Namespace) -> int:
    from tunesmith.evaluate.suite import run_suite, summary_lines

    if a.crop_bars is not None and not 1 <= a.crop_bars <= 256:
        raise OptionError("--crop-bars", f"must be between 1 and 256, got {a.crop_bars}")
    if a.max_reference < 2:
        raise OptionError("--max-reference", f"must be at least 2, got {a.max_reference}")
    import warnings

    with warnings.catch_warnings():
        # NumPy's "mean of empty slice" and "invalid value in divide" for a feature no piece of a small
        # set has (one generated piece; a melody's four-voice features): the report shows those as "–"
        warnings.simplefilter("ignore", RuntimeWarning)
        res = run_suite(a.generated, a.reference, train=a.train, out=a.out, model=a.model,
                        reference_split=a.reference_split, max_reference=a.max_reference, seed=a.seed,
                        progress=not a.quiet, crop_bars=a.crop_bars, fair=not a.no_fair)
    if a.json:
        print(dumps(json.loads(json.dumps({k: res[k] for k in ("frechet", "two_sample_test", "theory", "fair") if k in res}, default=str)), indent=1))
    else:
        for line in summary_lines(res):
            print(line)
        print(f"report: {res['out']}/report.md, report.html, metrics.json")
    return 0


def cmd_listening(a: argparse.Namespace) -> int:
    from pathlib import Path

    from tunesmith.evaluate.listening import analyse, format_listening
    from tunesmith.music.io import atomic_write_bytes

    res = analyse(a.csv)
    text = format_listening(res)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "listening.json", res)
        atomic_write_bytes(out / "listening.md", text.encode())
    print(dumps(res, indent=1) if a.json else text)
    return 0
