"""Statistics of listening tests: mean opinion scores, pairwise preferences, agreement.

CSV formats (UTF-8, a header row, one judgement per row; extra columns are ignored):

Ratings — absolute category rating, e.g. 1 (bad) … 5 (excellent)::

    rater,item,system,rating
    r01,piece-03,lstm,4
    r01,piece-03,bach,5

Preferences — which of two clips is better; ``winner`` is ``a``, ``b``, ``tie`` or
the name of one of the two systems::

    rater,item,system_a,system_b,winner
    r01,piece-03,lstm,transformer,b

Results
- MOS per system with a 95% Student-t interval (ratings taken as independent);
  Welch's t-test between every pair of systems.
- Bradley–Terry strengths from the preferences, fitted as a logistic regression
  without intercept (``statsmodels`` GLM, binomial family; a tie counts half a
  win for each side), the first system in alphabetical order fixed at 0; the Wald
  test of every difference, and the implied probability that one beats the other.
- Inter-rater agreement: Krippendorff's alpha (``krippendorff`` package) — ordinal
  for ratings with units = (item, system), nominal for preferences with units =
  (item, pair).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError

RATING_COLUMNS = ["rater", "item", "system", "rating"]
PREFERENCE_COLUMNS = ["rater", "item", "system_a", "system_b", "winner"]


def read_table(path: str | Path):
    """A ratings or preferences CSV as a DataFrame, with its kind ("ratings" or
    "preferences"); a clear error for anything else."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise BadInputError(p, "no such file")
    if p.stat().st_size == 0:
        raise BadInputError(p, "the file is empty")
    if p.stat().st_size > 200 * 2**20:
        raise BadInputError(p, "over 200 MB; is this a listening-test CSV?")
    try:
        df = pd.read_csv(p, dtype=str, skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BadInputError(p, f"not a readable CSV file ({str(e).splitlines()[0][:100]})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if set(RATING_COLUMNS) <= set(df.columns):
        kind, cols = "ratings", RATING_COLUMNS
    elif set(PREFERENCE_COLUMNS) <= set(df.columns):
        kind, cols = "preferences", PREFERENCE_COLUMNS
    else:
        raise BadInputError(p, f"columns {list(df.columns)[:8]} are neither {','.join(RATING_COLUMNS)} "
                            f"nor {','.join(PREFERENCE_COLUMNS)}")
    df = df[cols].copy()
    for c in cols:
        df[c] = df[c].astype(str).str.strip()
    empty = (df[cols] == "") | df[cols].isna() | (df[cols] == "nan")
    if empty.any(axis=None):
        row = int(np.flatnonzero(empty.any(axis=1).to_numpy())[0]) + 2
        raise BadInputError(p, f"line {row}: an empty field")
    if not len(df):
        raise BadInputError(p, "no judgements (only a header)")
    if kind == "ratings":
        vals = pd.to_numeric(df["rating"], errors="coerce")
        if vals.isna().any():
            row = int(np.flatnonzero(vals.isna().to_numpy())[0]) + 2
            raise BadInputError(p, f"line {row}: rating '{df['rating'].iloc[row - 2]}' is not a number")
        df["rating"] = vals.astype(float)
    else:
        w = df["winner"].str.lower()
        ok = w.isin(["a", "b", "tie"]) | (df["winner"] == df["system_a"]) | (df["winner"] == df["system_b"])
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0]) + 2
            raise BadInputError(p, f"line {row}: winner '{df['winner'].iloc[row - 2]}' is not a, b, tie "
                                "or one of the two systems")
        same = df["system_a"] == df["system_b"]
        if same.any():
            row = int(np.flatnonzero(same.to_numpy())[0]) + 2
            raise BadInputError(p, f"line {row}: a system compared with itself")
        df["score_a"] = np.where((w == "a") | (df["winner"] == df["system_a"]), 1.0,
                                 np.where(w == "tie", 0.5, 0.0))
    return df, kind


# --------------------------------------------------------------------------- ratings


def mos(df) -> dict:
    """MOS with 95% t-intervals per system and Welch's t-test for each pair."""
    from scipy import stats

    systems = {}
    for name, g in df.groupby("system", sort=True):
        r = g["rating"].to_numpy(float)
        n = len(r)
        sd = float(r.std(ddof=1)) if n > 1 else math.nan
        half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
        systems[name] = {"n": n, "mos": float(r.mean()), "std": sd, "ci95": [float(r.mean()) - half,
                                                                              float(r.mean()) + half]}
    pairs = []
    for a, b in itertools.combinations(sorted(systems), 2):
        ra = df.loc[df["system"] == a, "rating"].to_numpy(float)
        rb = df.loc[df["system"] == b, "rating"].to_numpy(float)
        if len(ra) > 1 and len(rb) > 1 and (ra.std() > 0 or rb.std() > 0):
            t = stats.ttest_ind(ra, rb, equal_var=False)
            pairs.append({"a": a, "b": b, "difference": float(ra.mean() - rb.mean()), "p_value": float(t.pvalue)})
    return {"systems": systems, "pairs": pairs, "agreement": _alpha_ratings(df)}


def _alpha_ratings(df) -> dict:

    units = df.groupby(["item", "system"]).ngroup()
    raters = df["rater"].astype("category").cat.codes
    data = np.full((raters.max() + 1, units.max() + 1), np.nan)
    data[raters.to_numpy(), units.to_numpy()] = df["rating"].to_numpy(float)
    return _alpha(data, "ordinal")


def _alpha(data: np.ndarray, level: str) -> dict:
    import krippendorff

    rated = np.isfinite(data).sum(axis=0)
    if data.shape[0] < 2 or (rated >= 2).sum() < 2 or len(np.unique(data[np.isfinite(data)])) < 2:
        return {"krippendorff_alpha": math.nan, "level": level, "raters": int(data.shape[0]),
                "units_with_two_or_more_ratings": int((rated >= 2).sum())}
    a = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    return {"krippendorff_alpha": float(a), "level": level, "raters": int(data.shape[0]),
            "units_with_two_or_more_ratings": int((rated >= 2).sum())}


# --------------------------------------------------------------------------- preferences


def bradley_terry(df) -> dict:
    """Bradley–Terry scores (log-strengths) with standard errors, Wald tests between
    every pair of systems and the win probabilities they imply."""
    import statsmodels.api as sm
    from scipy import stats

    systems = sorted(set(df["system_a"]) | set(df["system_b"]))
    idx = {s: i for i, s in enumerate(systems)}
    k = len(systems)
    n = len(df)
    X = np.zeros((n, k))
    X[np.arange(n), df["system_a"].map(idx).to_numpy()] = 1.0
    X[np.arange(n), df["system_b"].map(idx).to_numpy()] = -1.0
    X = X[:, 1:]  # the first system is the reference, fixed at 0
    y = df["score_a"].to_numpy(float)
    # a tie is half a win for each side: two rows of weight 1/2
    Xs = np.concatenate([X, X])
    ys = np.concatenate([np.ones(n), np.zeros(n)])
    w = np.concatenate([y, 1 - y])
    keep = w > 0
    wins = {s: float(df.loc[df["system_a"] == s, "score_a"].sum() +
                     (1 - df.loc[df["system_b"] == s, "score_a"]).sum()) for s in systems}
    games = {s: int(((df["system_a"] == s) | (df["system_b"] == s)).sum()) for s in systems}
    out = {"systems": {}, "pairs": [], "reference": systems[0]}
    if k < 2:
        return out
    try:
        fit = sm.GLM(ys[keep], Xs[keep], family=sm.families.Binomial(), freq_weights=w[keep]).fit()
        beta = np.concatenate([[0.0], fit.params])
        cov = np.zeros((k, k))
        cov[1:, 1:] = fit.cov_params()
        ok = np.isfinite(beta).all() and np.abs(beta).max() < 30
    except Exception:  # perfect separation (one system always wins): no finite estimate
        ok = False
    if not ok:
        out["error"] = "no finite Bradley–Terry fit (some system always wins or always loses)"
        beta, cov = np.full(k, np.nan), np.full((k, k), np.nan)
    for s in systems:
        i = idx[s]
        out["systems"][s] = {"score": float(beta[i]), "se": float(math.sqrt(cov[i, i])) if i else 0.0,
                             "wins": wins[s], "comparisons": games[s]}
    for a, b in itertools.combinations(systems, 2):
        i, j = idx[a], idx[b]
        d = beta[i] - beta[j]
        var = cov[i, i] + cov[j, j] - 2 * cov[i, j]
        z = d / math.sqrt(var) if var > 0 else math.nan
        out["pairs"].append({"a": a, "b": b, "score_difference": float(d),
                             "p_a_beats_b": float(1 / (1 + math.exp(-d))) if np.isfinite(d) else math.nan,
                             "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else math.nan})
    out["agreement"] = _alpha_preferences(df)
    return out


def _alpha_preferences(df) -> dict:
    # canonical orientation: unit = (item, sorted pair); value 0 = first wins, 1 = tie, 2 = second
    first = np.minimum(df["system_a"].to_numpy(), df["system_b"].to_numpy())
    flipped = df["system_a"].to_numpy() != first
    score_first = np.where(flipped, 1 - df["score_a"].to_numpy(float), df["score_a"].to_numpy(float))
    value = np.select([score_first == 1, score_first == 0.5], [0.0, 1.0], 2.0)
    pair_key = df["item"].astype(str) + "\x00" + first + "\x00" + np.maximum(
        df["system_a"].to_numpy(), df["system_b"].to_numpy())
    units = pair_key.astype("category").cat.codes.to_numpy()
    raters = df["rater"].astype("category").cat.codes.to_numpy()
    data = np.full((raters.max() + 1, units.max() + 1), np.nan)
    data[raters, units] = value
    return _alpha(data, "nominal")


def analyse(paths: list[str | Path]) -> dict:
    """Read each CSV and analyse it by its kind."""
    out: dict = {}
    for p in paths:
        df, kind = read_table(p)
        res = mos(df) if kind == "ratings" else bradley_terry(df)
        res["file"] = str(p)
        res["judgements"] = len(df)
        res["raters"] = int(df["rater"].nunique())
        out.setdefault(kind, []).append(res)
    return out


def format_listening(res: dict) -> str:
    """A markdown summary of :func:`analyse`'s result."""
    lines = []
    for r in res.get("ratings", []):
        lines += [f"### Mean opinion scores — {Path(r['file']).name} ({r['judgements']} ratings, {r['raters']} raters)",
                  "", "| system | n | MOS | 95% CI |", "| --- | ---: | ---: | --- |"]
        for s, v in sorted(r["systems"].items(), key=lambda kv: -kv[1]["mos"]):
            lines.append(f"| {s} | {v['n']} | {v['mos']:.2f} | {v['ci95'][0]:.2f} – {v['ci95'][1]:.2f} |")
        if r["pairs"]:
            lines += ["", "| a | b | MOS difference | Welch p |", "| --- | --- | ---: | ---: |"]
            lines += [f"| {p['a']} | {p['b']} | {p['difference']:+.2f} | {p['p_value']:.3g} |" for p in r["pairs"]]
        ag = r["agreement"]
        lines += ["", f"Inter-rater agreement: Krippendorff's alpha ({ag['level']}) = {ag['krippendorff_alpha']:.3f}", ""]
    for r in res.get("preferences", []):
        lines += [f"### Pairwise preferences — {Path(r['file']).name} ({r['judgements']} judgements, {r['raters']} raters)",
                  "", f"Bradley–Terry log-strengths ({r['reference']} fixed at 0):", "",
                  "| system | score | s.e. | wins | comparisons |", "| --- | ---: | ---: | ---: | ---: |"]
        if r.get("error"):
            lines.insert(-4, f"**{r['error']}**")
        for s, v in sorted(r["systems"].items(), key=lambda kv: -(kv[1]["score"] if kv[1]["score"] == kv[1]["score"] else -1e9)):
            lines.append(f"| {s} | {v['score']:+.3f} | {v['se']:.3f} | {v['wins']:g} | {v['comparisons']} |")
        lines += ["", "| a | b | P(a beats b) | z | p |", "| --- | --- | ---: | ---: | ---: |"]
        lines += [f"| {p['a']} | {p['b']} | {p['p_a_beats_b']:.3f} | {p['z']:.2f} | {p['p_value']:.3g} |" for p in r["pairs"]]
        ag = r.get("agreement", {})
        if ag:
            lines += ["", f"Inter-rater agreement: Krippendorff's alpha ({ag['level']}) = {ag['krippendorff_alpha']:.3f}", ""]
    return "\n".join(lines)
