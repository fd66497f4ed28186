"""``benchmarks/claims.py``: the verdict rules on constructed rows, and the claims table rendered from the
committed section records (``benchmarks/results/*.json``).  No training, no torch: well under a second."""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
claims = importlib.import_module("claims")
benchkit = importlib.import_module("benchkit")

EARLY = [{"name": "train", "epochs_run": 12, "best_epoch": 7, "epoch_cap": 40, "patience": 5}]
CAPPED = [{"name": "train", "epochs_run": 40, "best_epoch": 40, "epoch_cap": 40, "patience": 5}]


def row(key, value, *, seed=2024, n=1000, stages=EARLY, recipe="method", loss=None, domain="D"):
    r = {"key": key, "setting": "", "recipe": recipe, "seed": seed, "test": {domain: {"ndcg@10": value}},
         "counts": {domain: n}, "stages": [dict(s) for s in stages]}
    if loss:
        r["loss"] = loss
    return r


def seeded(key, values, **kw):
    return [row(key, v, seed=2024 + i, **kw) for i, v in enumerate(values)]


def judge(a_rows, b_rows, role="SASRec"):
    c = claims.compare(a_rows, b_rows, "D", method="a", baseline="b", role=role)
    return c, claims.judge_setting([c], [role])


# ----------------------------------------------------------------------------- seeds: paired by seed
def test_paired_difference_beyond_two_standard_errors_holds():
    c, (outcome, reason, _) = judge(seeded("a", [0.050, 0.052, 0.051]), seeded("b", [0.040, 0.041, 0.0405],
                                                                                 recipe="sasrec", loss="ce"))
    diffs = [0.010, 0.011, 0.0105]
    assert c.seeds == 3 and "paired by seed" in c.how
    assert c.diff == pytest.approx(sum(diffs) / 3)
    assert c.se == pytest.approx(0.0005 / math.sqrt(3))
    assert c.outcome == "held" and outcome == claims.HELD, reason


def test_reversed_beyond_two_standard_errors_is_not_held():
    c, (outcome, reason, _) = judge(seeded("a", [0.040, 0.041, 0.0405]), seeded("b", [0.050, 0.052, 0.051],
                                                                                 recipe="sasrec", loss="ce"))
    assert c.outcome == "reversed" and outcome == claims.NOT_HELD
    assert "behind" in reason


def test_inside_two_standard_errors_is_not_decided_and_blocks_a_hold_elsewhere():
    # mean difference +0.002, but the seeds disagree: SE of the paired difference ~0.0058
    c, (outcome, reason, blocks) = judge(seeded("a", [0.050, 0.030, 0.046]), seeded("b", [0.040, 0.042, 0.038],
                                                                                     recipe="sasrec", loss="ce"))
    assert abs(c.diff) < 2 * c.se and c.outcome == "within"
    assert outcome == claims.NOT_DECIDED and "within 2 SE" in reason and blocks


def test_pairing_uses_only_the_seeds_both_sides_have():
    a = seeded("a", [0.050, 0.052, 0.051])
    b = seeded("b", [0.040, 0.041], recipe="sasrec", loss="ce")
    c = claims.compare(a, b, "D")
    assert c.seeds == 2 and c.diff == pytest.approx((0.010 + 0.011) / 2)


# ----------------------------------------------------------------------------- capped rows decide nothing
def test_stage_capped_follows_the_rule():
    assert claims.stage_capped({"epochs_run": 40, "best_epoch": 40, "epoch_cap": 40}) is True
    assert claims.stage_capped({"epochs_run": 40, "best_epoch": 39, "epoch_cap": 40}) is False  # best < cap
    assert claims.stage_capped({"epochs_run": 12, "best_epoch": None, "epoch_cap": 40}) is False  # stopped early
    assert claims.stage_capped({"epochs_run": 2, "best_epoch": None, "epoch_cap": 2}) is None  # unknown at the cap
    assert claims.stage_capped({"epochs_run": 5, "best_epoch": 5, "epoch_cap": 40, "capped": True}) is True  # trainer
    assert claims.row_capped({"stages": []}) is None


@pytest.mark.parametrize("a_value,b_value", [(0.09, 0.01), (0.01, 0.09)])
@pytest.mark.parametrize("side", ["method", "baseline"])
def test_a_capped_row_decides_nothing_whatever_the_difference(a_value, b_value, side):
    a = [row("a", a_value, n=100_000, stages=CAPPED if side == "method" else EARLY)]
    b = [row("b", b_value, n=100_000, stages=CAPPED if side == "baseline" else EARLY, recipe="sasrec", loss="ce")]
    c, (outcome, reason, blocks) = judge(a, b)
    assert not c.counted and c.outcome == "capped" and abs(c.z) > 10
    assert outcome == claims.NOT_DECIDED and "capped" in reason and not blocks


def test_a_stage_at_its_cap_without_a_recorded_best_epoch_decides_nothing():
    unknown = [{"name": "recommender:1", "epochs_run": 2, "best_epoch": None, "epoch_cap": 2}]
    c, (outcome, reason, _) = judge([row("a", 0.09, n=100_000, stages=unknown)], [row("b", 0.01, n=100_000)])
    assert not c.counted and outcome == claims.NOT_DECIDED and "not recorded" in reason


def test_a_stage_cut_by_its_cap_before_patience_counts_but_carries_a_caveat():
    cut = [{"name": "train", "epochs_run": 6, "best_epoch": 5, "epoch_cap": 6, "patience": 2}]
    c, (outcome, reason, _) = judge([row("a", 0.01, n=10_000, stages=cut)],
                                    [row("b", 0.04, n=10_000, recipe="sasrec", loss="ce")])
    assert c.counted and outcome == claims.NOT_HELD
    assert c.caveats and "before patience 2 ran out" in reason


# ----------------------------------------------------------------------------- one seed: the per-user bound
def test_one_seed_uses_the_per_user_bound_of_each_side():
    a, b, n = 0.0508, 0.0319, 1500
    c, (outcome, _, _) = judge([row("a", a, n=n)], [row("b", b, n=n, recipe="sasrec", loss="ce")])
    assert c.seeds == 1 and c.how.startswith("one seed")
    assert c.se == pytest.approx(math.sqrt(a * (1 - a) / n + b * (1 - b) / n))
    assert c.z == pytest.approx(2.60, abs=0.01) and outcome == claims.HELD
    c, (outcome, _, _) = judge([row("a", a, n=300)], [row("b", b, n=300, recipe="sasrec", loss="ce")])
    assert c.outcome == "within" and outcome == claims.NOT_DECIDED


def test_the_average_uses_the_sum_of_the_domains_users():
    r = {"test": {"average": {"ndcg@10": 0.02}}, "counts": {"A": 100, "B": 300}}
    assert claims.users_of(r, "average") == 400
    assert claims.se_bound(0.02, 400) == pytest.approx(math.sqrt(0.02 * 0.98 / 400))


# ----------------------------------------------------------------------------- the strongest baseline
def test_beating_only_a_weaker_sasrec_does_not_hold_but_losing_to_it_refutes():
    weak = dict(recipe="sasrec", loss="bpr", n=100_000)
    _, (outcome, reason, _) = judge([row("a", 0.05, n=100_000)], [row("b", 0.03, **weak)])
    assert outcome == claims.NOT_DECIDED and "strongest baseline" in reason
    _, (outcome, _, _) = judge([row("a", 0.03, n=100_000)], [row("b", 0.05, **weak)])
    assert outcome == claims.NOT_HELD
    overridden = row("b", 0.03, recipe="sasrec", n=100_000)
    overridden["overrides"] = {"encoder.params.loss": "bpr"}
    assert not claims.is_strongest(overridden) and claims.is_strongest(row("b", 0.03, recipe="sasrec"))


def test_every_role_must_hold():
    strong = dict(recipe="sasrec", loss="ce", n=100_000)
    ahead = claims.compare([row("a", 0.05, n=100_000)], [row("b", 0.03, **strong)], "D", role="single")
    level = claims.compare([row("a", 0.05, n=100_000)], [row("c", 0.0499, **strong)], "D", role="shared")
    outcome, reason, _ = claims.judge_setting([ahead, level], ["single", "shared"])
    assert outcome == claims.NOT_DECIDED and "vs shared" in reason
    outcome, _, _ = claims.judge_setting([ahead], ["single", "shared"])
    assert outcome == claims.NOT_DECIDED  # no comparison with "shared" at all


def _result(outcome, blocks=False, decides=True):
    return claims.SettingResult("s", "sec", decides, outcome, "why", blocks, [])


def test_claim_verdict_from_its_settings():
    J = claims.judge_claim
    assert J([_result(claims.HELD), _result(claims.NOT_DECIDED)])[0] == claims.HELD  # the other was capped
    assert J([_result(claims.HELD), _result(claims.NOT_DECIDED, blocks=True)])[0] == claims.NOT_DECIDED
    assert J([_result(claims.HELD), _result(claims.NOT_HELD)])[0] == claims.NOT_HELD
    assert J([_result(claims.NOT_HELD, decides=False), _result(claims.NOT_DECIDED)])[0] == claims.NOT_DECIDED
    assert J([_result(claims.NOT_MEASURABLE), _result(claims.NOT_MEASURABLE)])[0] == claims.NOT_MEASURABLE
    assert J([_result(claims.NOT_MEASURABLE), _result(claims.HELD)])[0] == claims.HELD
    outcome, reason, _ = claims.judge_setting([], ["x"], not_measurable="needs a GPU")
    assert outcome == claims.NOT_MEASURABLE and reason == "needs a GPU"


def test_generative_runs_not_finished_are_not_decided():
    assert "not finished" in claims.generative_pending(None)
    rows = [{"recipe": r, "seed": s} for r in ("gmc", "tiger", "sasrec") for s in (2024, 2025)]
    record = {"args": {"seeds": [2024, 2025, 2026], "only": ["gmc", "tiger", "sasrec"]}, "rows": rows}
    assert claims.generative_pending(record) == "runs not finished (6 of 9 runs)"
    record["args"]["seeds"] = [2024, 2025]
    assert claims.generative_pending(record) is None
    outcome, reason, blocks = claims.judge_setting([], ["TIGER"], pending="runs not finished (6 of 9 runs)")
    assert outcome == claims.NOT_DECIDED and "not finished" in reason and blocks


# ----------------------------------------------------------------------------- the table from the committed records
def test_the_table_has_one_row_per_paper_with_links_to_existing_headings():
    doc = benchkit.BENCHMARKS_MD.read_text(encoding="utf-8")
    records = claims.load_records(benchkit.RESULTS_DIR)
    for name in ("syncrec", "idp", "man", "man-all", "idgenrec", "scientific"):
        assert name in records and records[name]["rows"], name
        assert records[name]["source"].startswith(f"extracted from docs/benchmarks.md section {name}")
    body = claims.render(records, doc)
    rows = [line for line in body.splitlines() if line.startswith("| **")]
    assert [re.match(r"\| \*\*(\w+)\*\*", r).group(1) for r in rows] == ["SyNCRec", "IDP", "MAN", "IDGenRec", "GMC"]
    _, anchors = claims.section_anchors(doc)
    verdicts = (claims.HELD, claims.NOT_HELD, claims.NOT_DECIDED, claims.NOT_MEASURABLE)
    for line in rows:
        links = re.findall(r"\]\(#([^)]+)\)", line.rsplit(" | ", 1)[-1])
        assert links and all(a in anchors for a in links), (line[:40], links)
        assert re.search(r"\| \*\*(" + "|".join(verdicts) + r")\*\* — ", line), line[:40]
        assert len(line.split(" | ")) == 7


def _generative(values: dict[str, list[float]], capped_recipe: str | None = None) -> dict:
    """A record in the format benchmarks/generative.py writes (benchkit.save_results)."""
    rows = []
    for recipe, per_seed in values.items():
        for seed, v in zip((2024, 2025, 2026), per_seed):
            best = 40 if recipe == capped_recipe else 20
            rows.append({"recipe": recipe, "seed": seed, "counts": {"Scientific": 3000, "Arts": 1400},
                         "test": {"Scientific": {"ndcg@10": v}, "Arts": {"ndcg@10": v}, "average": {"ndcg@10": v}},
                         "stages": [{"name": "unified", "epochs_run": best, "best_epoch": best, "epoch_cap": 40,
                                     "capped": best == 40}],
                         "load": {"mean_1min": 2.5}, "started": f"2026-12-03T0{seed - 2020}:00:00",
                         "finished": f"2026-12-03T0{seed - 2020}:30:00"})
    return claims.normalize({"section": "generative", "machine": {"cpu": "AMD EPYC", "cores": 2, "cuda": False},
                             "args": {"seeds": [2024, 2025, 2026], "only": ["gmc", "tiger", "sasrec"],
                                      "profile": "cpu"}, "rows": rows})


@pytest.mark.parametrize("values,capped,verdict", [
    ({"gmc": [0.030, 0.031, 0.0305], "tiger": [0.025, 0.026, 0.0255], "sasrec": [0.020, 0.0205, 0.021]}, None,
     claims.HELD),
    ({"gmc": [0.030, 0.031, 0.0305], "tiger": [0.025, 0.026, 0.0255], "sasrec": [0.020, 0.0205, 0.021]}, "sasrec",
     claims.NOT_DECIDED),
    ({"gmc": [0.020, 0.021, 0.0205], "tiger": [0.025, 0.026, 0.0255], "sasrec": [0.030, 0.031, 0.0305]}, None,
     claims.NOT_HELD),
])
def test_gmc_verdict_from_a_generative_record(values, capped, verdict):
    records = claims.load_records(benchkit.RESULTS_DIR)
    records["generative"] = _generative(values, capped)
    spec = next(s for s in claims.CLAIMS if s.paper == "GMC")
    results, got, reason = claims.evaluate(spec, records)
    assert got == verdict, reason
    main = results[0]
    assert [c.seeds for c in main.comparisons] == [3, 3, 3] and main.comparisons[0].domain == "average"
    body = claims.render(records, benchkit.BENCHMARKS_MD.read_text(encoding="utf-8"))
    gmc_row = next(line for line in body.splitlines() if line.startswith("| **GMC**"))
    assert "mean ± std over 3 seeds" in gmc_row and f"**{verdict}**" in gmc_row
    partial = _generative({k: v[:2] for k, v in values.items()})
    records["generative"] = partial
    assert claims.evaluate(spec, records)[1] == claims.NOT_DECIDED


def test_the_block_goes_after_the_intro_and_is_replaced_in_place():
    text = "# Benchmarks\n\nIntro.\n\n<!-- a:start -->\n## A\n<!-- a:end -->\n"
    once = claims.insert_block(text, "## Claims\n\nv1")
    assert once.index("<!-- claims:start -->") < once.index("<!-- a:start -->") and once.startswith("# Benchmarks\n\nIntro.")
    twice = claims.insert_block(once, "## Claims\n\nv2")
    assert twice.count("<!-- claims:start -->") == 1 and "v2" in twice and "v1" not in twice
    assert twice.replace("v2", "v1") == once


def test_github_anchors():
    assert claims.github_anchor("MAN vs single-domain and shared SASRec (Arts + Office, 1,000 users)") == \
        "man-vs-single-domain-and-shared-sasrec-arts--office-1000-users"
    assert claims.github_anchor("Default and `--quick` runs on the bundled data") == \
        "default-and---quick-runs-on-the-bundled-data"
    by_section, anchors = claims.section_anchors("## X\n<!-- s:start -->\n## X\n<!-- s:end -->\n")
    assert by_section == {"s": "x-1"} and anchors == {"x", "x-1"}


def test_save_results_writes_strict_json_atomically(tmp_path):
    path = benchkit.save_results("demo-1", {"rows": [{"x": float("nan"), "p": Path("/a")}], "when": "now"},
                                 root=tmp_path)
    assert path == tmp_path / "demo-1.json"
    assert json.loads(path.read_text()) == {"section": "demo-1", "rows": [{"x": None, "p": "/a"}], "when": "now"}
    assert [p.name for p in tmp_path.iterdir()] == ["demo-1.json"]  # no temporary file left
    with pytest.raises(ValueError):
        benchkit.save_results("../escape", {}, root=tmp_path)
    with pytest.raises(ValueError):
        benchkit.save_results("a", {"section": "b"}, root=tmp_path)
