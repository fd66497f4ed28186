"""``benchmarks/claims.py``: the verdict rules on constructed rows, and the claims table rendered from the
committed section records (``benchmarks/results/*.json``).  No training, no torch: well under a second."""

from __future__ import annotations

import importlib
import json
import math
import re
import statistics
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
    assert [re.match(r"\| \*\*([\w ,]+?)\*\*", r).group(1) for r in rows] == [
        "SyNCRec", "IDP", "MAN", "IDGenRec", "GMC", "GMC, Table 4 ablation"]
    _, anchors = claims.section_anchors(doc)
    verdicts = (claims.HELD, claims.NOT_HELD, claims.NOT_DECIDED, claims.NOT_MEASURABLE)
    for line in rows:
        links = re.findall(r"\]\(#([^)]+)\)", line.rsplit(" | ", 1)[-1])
        assert links and all(a in anchors for a in links), (line[:40], links)
        assert re.search(r"\| \*\*(" + "|".join(verdicts) + r")\*\* — ", line), line[:40]
        assert len(line.split(" | ")) == 7


def _generative(values: dict[str, list[float]], capped_recipe: str | None = None) -> dict:
    """A record in the format benchmarks/generative.py writes (benchkit.save_results); it planned the recipes
    of ``values``."""
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
                             "args": {"seeds": [2024, 2025, 2026], "only": list(values),
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


def test_a_one_seed_row_beside_a_seeded_baseline_says_which_number_has_seeds():
    records = claims.load_records(benchkit.RESULTS_DIR)
    three = {"gmc": [0.020, 0.021, 0.0205], "tiger": [0.025, 0.026, 0.0255], "sasrec": [0.030, 0.031, 0.0305]}
    records["generative"] = _generative({**three, "gmc-t5-paper-size": [0.028], "tiger-t5-paper-size": [0.027],
                                         "gmc-t5-paper-size-full-finetune": [0.029]})
    spec = next(s for s in claims.CLAIMS if s.paper == "GMC")
    results, _, _ = claims.evaluate(spec, records)
    paper_size = next(r for r in results if "papers' T5" in r.label)
    text = claims.measured_text(paper_size)
    # every comparison is on the one seed both sides have, so SASRec shows its seed-2024 number
    assert "(NDCG@10, one seed)" in text
    assert "tiger, the papers' T5 0.0270," in text and "sasrec 0.0300" in text
    assert "mean ± std over 3 seeds" in claims.measured_text(results[0])
    # two seeds of the pair, one of the full fine-tuning so far: the text says which number is which
    records["generative"] = _generative({**three, "gmc-t5-paper-size": [0.028, 0.026],
                                         "tiger-t5-paper-size": [0.027, 0.029], "gmc-t5-paper-size-full-finetune": [0.029]})
    results, _, _ = claims.evaluate(spec, records)
    text = claims.measured_text(next(r for r in results if "papers' T5" in r.label))
    assert "(NDCG@10, mean ± std over 2 seeds; one seed where no ± is shown)" in text
    assert "long full fine-tuning per domain 0.0290," in text


def test_a_row_with_one_seed_is_compared_on_that_seed_when_the_other_side_has_more():
    a = seeded("a", [0.028])
    b = seeded("b", [0.030, 0.020, 0.020], recipe="sasrec", loss="ce")
    c = claims.compare(a, b, "D")
    assert c.seeds == 1 and c.diff == pytest.approx(-0.002) and c.b == pytest.approx(0.030)  # not 0.028 - 0.0233
    assert c.how.startswith("seed 2024, the one both sides have")
    assert c.b_std is None
    # no seed in common: the means, said to be unpaired
    c = claims.compare(a, [dict(r, seed=r["seed"] + 10) for r in b], "D")
    assert c.how.startswith("seeds not paired") and c.b == pytest.approx(0.070 / 3)


def test_pending_runs_are_counted_for_the_recipes_a_setting_compares():
    rows = [{"recipe": r, "seed": s} for r in ("gmc", "tiger", "sasrec") for s in (2024, 2025, 2026)]
    rows += [{"recipe": "gmc-shared-off", "seed": 2025}]
    record = {"args": {"seeds": [2024, 2025, 2026], "only": ["gmc", "tiger", "sasrec", "gmc-shared-off"]},
              "rows": rows}
    assert claims.generative_pending(record, ["gmc", "tiger", "sasrec"]) is None  # the ablation does not hold it up
    assert claims.generative_pending(record, ["gmc", "gmc-shared-off"]) == "runs not finished (4 of 6 runs)"
    assert claims.generative_pending(record) == "runs not finished (10 of 12 runs)"
    del record["args"]["only"]  # a record written before the ablation planned gmc, tiger and sasrec only
    assert claims.generative_pending(record, ["gmc", "gmc-shared-off"]) == \
        "not run: gmc-shared-off not among the benchmark's recipes"


@pytest.mark.parametrize("shared_off,unified_off,verdict", [
    ([0.020, 0.0205, 0.021], [0.018, 0.019, 0.0185], claims.HELD),  # gmc 0.030: the drops the paper reports
    ([0.020, 0.0205, 0.021], [0.031, 0.029, 0.0295], claims.NOT_DECIDED),  # (2) within 2 SE: −0.001, +0.0015, 0
    ([0.031, 0.029, 0.0295], [0.018, 0.019, 0.0185], claims.NOT_DECIDED),  # (1) within 2 SE
    ([0.020, 0.0205, 0.021], [0.040, 0.041, 0.0405], claims.NOT_HELD),  # one design costs accuracy
    ([0.040, 0.041, 0.0405], [0.018, 0.019, 0.0185], claims.NOT_HELD),
])
def test_gmc_ablation_verdict(shared_off, unified_off, verdict):
    gmc = [0.030, 0.0305, 0.0295]
    records = claims.load_records(benchkit.RESULTS_DIR)
    records["generative"] = _generative({"gmc": gmc, "tiger": [0.02] * 3, "sasrec": [0.01] * 3,
                                         "gmc-shared-off": shared_off, "gmc-unified-off": unified_off})
    spec = next(s for s in claims.CLAIMS if s.paper == "GMC, Table 4 ablation")
    results, got, reason = claims.evaluate(spec, records)
    assert got == verdict, reason
    by_baseline = {c.baseline: c for c in results[0].comparisons}
    assert sorted(by_baseline) == ["gmc w/o sharable codebook", "gmc w/o unified recommender"]
    for variant, name in ((shared_off, "gmc w/o sharable codebook"), (unified_off, "gmc w/o unified recommender")):
        c = by_baseline[name]
        diffs = [a - b for a, b in zip(gmc, variant)]
        assert (c.method, c.domain, c.seeds) == ("gmc", "average", 3)
        assert math.isclose(c.diff, sum(diffs) / 3) and math.isclose(c.se, statistics.stdev(diffs) / math.sqrt(3))


def test_the_gmc_ablation_waits_for_both_variants():
    records = claims.load_records(benchkit.RESULTS_DIR)
    records["generative"] = _generative({"gmc": [0.030, 0.0305, 0.0295], "gmc-shared-off": [0.040, 0.041, 0.0405]})
    spec = next(s for s in claims.CLAIMS if s.paper == "GMC, Table 4 ablation")
    results, got, reason = claims.evaluate(spec, records)
    assert got == claims.NOT_DECIDED and "gmc-unified-off" in reason, reason


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


# ----------------------------------------------------------------------------- SyNCRec: the seeded section decides
SYN_DOMAINS = ("Scientific", "Arts", "Office")


def _syncrec_seeds(values: dict[str, list[float]], capped_key: str | None = None, smoke: bool = False) -> dict:
    """A record in the shape benchmarks/syncrec_seeds.py writes: per (method, seed) one row, the same NDCG@10
    on every domain."""
    loss = {"syncrec": "bpr", "sasrec-single": "bpr", "sasrec-ce": "ce"}
    rows = []
    for key, per_seed in values.items():
        for seed, v in zip((2024, 2025, 2026), per_seed):
            best = 100 if key == capped_key else 12
            test = {d: {"ndcg@10": v} for d in (*SYN_DOMAINS, "average")}
            rows.append({"recipe": "syncrec" if key == "syncrec" else "sasrec", "key": key, "setting": "",
                         "seed": seed, "loss": loss[key], "test": test,
                         "counts": {"Scientific": 1500, "Arts": 1400, "Office": 1400, "average": 4300},
                         "stages": [{"name": "joint-ntg", "epochs_run": min(best + 3, 100), "best_epoch": best,
                                     "epoch_cap": 100, "capped": best == 100, "patience": 3}],
                         "load": {"mean_1min": 3.0}, "started": "2026-12-03T08:00:00",
                         "finished": "2026-12-03T08:10:00"})
    return claims.normalize({"section": "syncrec-seeds", "smoke": smoke, "rows": rows,
                             "machine": {"cpu": "AMD EPYC", "cores": 2, "cuda": False, "threads": 1, "at_a_time": 2},
                             "protocol": "amazon-mini, seeds paired"})


SYN_AHEAD = {"syncrec": [0.030, 0.031, 0.0305], "sasrec-single": [0.020, 0.0205, 0.021],
             "sasrec-ce": [0.025, 0.026, 0.0255]}


def _syncrec_verdict(record: dict | None) -> tuple[list, str, str]:
    records = claims.load_records(benchkit.RESULTS_DIR)
    records.pop("syncrec-seeds", None)  # whether or not the real record exists yet
    if record is not None:
        records["syncrec-seeds"] = record
    spec = next(s for s in claims.CLAIMS if s.paper == "SyNCRec")
    return claims.evaluate(spec, records)


def test_syncrec_without_the_seeded_record_is_not_decided():
    results, verdict, reason = _syncrec_verdict(None)
    assert verdict == claims.NOT_DECIDED and "no record benchmarks/results/syncrec-seeds.json" in reason
    assert [r.section for r in results if r.decides] == ["syncrec-seeds"]  # the one-seed settings are context
    assert all(r.comparisons for r in results if not r.decides)


@pytest.mark.parametrize("values,capped,verdict", [
    (SYN_AHEAD, None, claims.HELD),
    (SYN_AHEAD, "sasrec-ce", claims.NOT_DECIDED),  # the strongest baseline ran into its cap
    ({**SYN_AHEAD, "sasrec-ce": [0.040, 0.041, 0.0405]}, None, claims.NOT_HELD),
    ({**SYN_AHEAD, "sasrec-ce": [0.031, 0.029, 0.0300]}, None, claims.NOT_DECIDED),  # within 2 SE of CE
    ({**SYN_AHEAD, "sasrec-single": [0.040, 0.041, 0.0405]}, None, claims.NOT_HELD),  # behind BPR refutes too
])
def test_syncrec_verdict_from_a_seeded_record(values, capped, verdict):
    results, got, reason = _syncrec_verdict(_syncrec_seeds(values, capped))
    assert got == verdict, reason
    main = results[0]
    assert main.section == "syncrec-seeds" and main.decides
    assert {(c.baseline, c.domain) for c in main.comparisons} == {
        (b, d) for b in ("SASRec per domain (BPR)", "SASRec per domain (CE)") for d in SYN_DOMAINS}
    assert all(c.seeds == 3 for c in main.comparisons)
    assert [c.strongest for c in main.comparisons] == [False] * 3 + [True] * 3


def test_a_smoke_record_decides_nothing():
    _, verdict, reason = _syncrec_verdict(_syncrec_seeds(SYN_AHEAD, smoke=True))
    assert verdict == claims.NOT_DECIDED and "smoke" in reason


def test_the_syncrec_row_links_to_the_seeded_section():
    records = claims.load_records(benchkit.RESULTS_DIR)
    records["syncrec-seeds"] = _syncrec_seeds(SYN_AHEAD)
    doc = benchkit.BENCHMARKS_MD.read_text(encoding="utf-8")
    if "<!-- syncrec-seeds:start -->" not in doc:
        doc += "\n<!-- syncrec-seeds:start -->\n## SyNCRec vs SASRec at convergence, with seeds\n<!-- syncrec-seeds:end -->\n"
    row = next(line for line in claims.render(records, doc).splitlines() if line.startswith("| **SyNCRec**"))
    links = re.findall(r"\]\(#([^)]+)\)", row.rsplit(" | ", 1)[-1])
    assert links[0] == claims.section_anchors(doc)[0]["syncrec-seeds"] and len(links) == 2
    assert "mean ± std over 3 seeds" in row and f"**{claims.HELD}**" in row
    assert "syncrec-seeds: AMD EPYC, 2 cores, CPU only, no GPU, 1 thread per run, 2 runs at a time" in row


# ----------------------------------------------------------------------------- MAN: the seeded section decides once it exists
MAN_DOMAINS = ("Arts", "Office")


def _man_seeds(values: dict[str, list[float]], capped_key: str | None = None, smoke: bool = False) -> dict:
    """A record in the shape benchmarks/man_seeds.py writes: per (method, seed) one row, the same NDCG@10 on
    every domain."""
    loss = {"man": "bce", "sasrec-ce-single": "ce", "sasrec-ce-joint": "ce", "sasrec-bce-single": "bce"}
    rows = []
    for key, per_seed in values.items():
        for seed, v in zip((2024, 2025, 2026), per_seed):
            cap, every = (60, 2) if key == "man" else (100, 1)
            best = cap if key == capped_key else 12
            rows.append({"recipe": "man" if key == "man" else "sasrec", "key": key, "setting": "", "seed": seed,
                         "loss": loss[key], "test": {d: {"ndcg@10": v} for d in (*MAN_DOMAINS, "average")},
                         "counts": {"Arts": 1000, "Office": 1000, "average": 2000},
                         "stages": [{"name": "joint", "epochs_run": min(best + 6, cap), "best_epoch": best,
                                     "epoch_cap": cap, "capped": best == cap, "patience": 3, "eval_every": every}],
                         "load": {"mean_1min": 3.0}, "started": "2026-12-03T08:00:00",
                         "finished": "2026-12-03T08:10:00"})
    return claims.normalize({"section": "man-seeds", "smoke": smoke, "rows": rows,
                             "machine": {"cpu": "AMD EPYC", "cores": 2, "cuda": False, "threads": 1, "at_a_time": 2},
                             "protocol": "ArtsOffice 1,000 users, seeds paired"})


MAN_AHEAD = {"man": [0.030, 0.031, 0.0305], "sasrec-ce-single": [0.025, 0.026, 0.0255],
             "sasrec-ce-joint": [0.024, 0.0245, 0.025], "sasrec-bce-single": [0.015, 0.016, 0.0155]}
MAN_BEHIND = [0.040, 0.041, 0.0405]


def _man_verdict(record: dict | None) -> tuple[list, str, str]:
    records = claims.load_records(benchkit.RESULTS_DIR)
    records.pop("man-seeds", None)  # whether or not the real record exists yet
    if record is not None:
        records["man-seeds"] = record
    spec = next(s for s in claims.CLAIMS if s.paper == "MAN")
    return claims.evaluate(spec, records)


def test_man_without_the_seeded_record_is_judged_by_the_one_seed_sections_as_before():
    results, verdict, _ = _man_verdict(None)
    assert [r.section for r in results] == ["man", "man-all"] and all(r.decides for r in results)
    assert verdict == claims.judge_claim(results)[0]
    records = claims.load_records(benchkit.RESULTS_DIR)
    records.pop("man-seeds", None)
    row = next(line for line in claims.render(records, "").splitlines() if line.startswith("| **MAN**"))
    assert "man-seeds" not in row and "context" not in row


@pytest.mark.parametrize("values,capped,verdict", [
    (MAN_AHEAD, None, claims.HELD),
    ({**MAN_AHEAD, "sasrec-ce-single": MAN_BEHIND}, None, claims.NOT_HELD),
    ({**MAN_AHEAD, "sasrec-ce-joint": MAN_BEHIND}, None, claims.NOT_HELD),
    ({**MAN_AHEAD, "sasrec-ce-joint": [0.031, 0.029, 0.0300]}, None, claims.NOT_DECIDED),  # within 2 SE of Shared
    (MAN_AHEAD, "sasrec-ce-single", claims.NOT_DECIDED),  # the strongest per-domain baseline ran into its cap
    (MAN_AHEAD, "man", claims.NOT_DECIDED),
    # SASRec at the paper's D = 20 and BCE is context: behind it alone decides nothing
    ({**MAN_AHEAD, "sasrec-bce-single": MAN_BEHIND}, None, claims.HELD),
])
def test_man_verdict_from_a_seeded_record(values, capped, verdict):
    results, got, reason = _man_verdict(_man_seeds(values, capped))
    assert got == verdict, reason
    main = results[0]
    assert main.section == "man-seeds" and main.decides
    assert [r.section for r in results if r.decides] == ["man-seeds"]  # the one-seed sections became context
    assert all(r.note.startswith("context only") for r in results[1:])
    assert {(c.baseline, c.domain) for c in main.comparisons} == {
        (b, d) for b in ("SASRec single (CE)", "SASRec joint (CE)") for d in MAN_DOMAINS}
    assert all(c.seeds == 3 and c.strongest for c in main.comparisons)
    if capped:
        assert "capped" in reason


def test_a_man_smoke_record_decides_nothing():
    _, verdict, reason = _man_verdict(_man_seeds(MAN_AHEAD, smoke=True))
    assert verdict == claims.NOT_DECIDED and "smoke" in reason


def test_the_man_row_links_to_the_seeded_section():
    records = claims.load_records(benchkit.RESULTS_DIR)
    records["man-seeds"] = _man_seeds(MAN_AHEAD)
    doc = benchkit.BENCHMARKS_MD.read_text(encoding="utf-8")
    if "<!-- man-seeds:start -->" not in doc:
        doc += "\n<!-- man-seeds:start -->\n## MAN vs SASRec at convergence, with seeds\n<!-- man-seeds:end -->\n"
    row = next(line for line in claims.render(records, doc).splitlines() if line.startswith("| **MAN**"))
    links = re.findall(r"\]\(#([^)]+)\)", row.rsplit(" | ", 1)[-1])
    assert links[0] == claims.section_anchors(doc)[0]["man-seeds"] and len(links) == 3
    assert "mean ± std over 3 seeds" in row and f"**{claims.HELD}**" in row
    assert "(context, decides nothing)" in row
    assert "man-seeds: AMD EPYC, 2 cores, CPU only, no GPU, 1 thread per run, 2 runs at a time" in row
