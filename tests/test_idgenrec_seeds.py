"""``benchmarks/idgenrec_seeds.py`` without training: the runs it plans, and the section and record it renders
from finished runs (``--render-only`` over hand-made run folders), read back by ``benchmarks/claims.py``."""

from __future__ import annotations

import importlib
import json
import math
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
seeds_bench = importlib.import_module("idgenrec_seeds")
claims = importlib.import_module("claims")

SEEDS = (2024, 2025, 2026)
# test NDCG@10 on Scientific per method and seed: alternate > rec-only > id-only, each beyond 2 SE
ORDERED = {"alternate": [0.020, 0.021, 0.0205], "rec-only": [0.015, 0.0155, 0.016],
           "id-only": [0.001, 0.0012, 0.0008], "sasrec-ce": [0.040, 0.041, 0.042],
           seeds_bench.GENTLE: [0.022, 0.023, 0.0225]}


def stages_of(method: str, capped_last: bool) -> list[dict]:
    """The stages a run records: two intermediate recommender rounds that ran their whole 10 epochs with the
    best at the last (never capped), then the last round, early-stopped or capped."""
    if method == "sasrec-ce":
        return [{"name": "single:Scientific", "epochs_run": 60, "best_epoch": 50, "epoch_cap": 200, "capped": False}]
    if method == "id-only":
        return [{"name": f"generator:{r}", "epochs_run": 1, "best_epoch": 1, "epoch_cap": 1, "capped": False,
                 "intermediate": False} for r in (1, 2)]
    rounds = [{"name": f"recommender:{r}", "epochs_run": 10, "best_epoch": 10, "epoch_cap": 10, "capped": False,
               "intermediate": True} for r in (1, 2)]
    last = ({"epochs_run": 40, "best_epoch": 40, "capped": True} if capped_last
            else {"epochs_run": 25, "best_epoch": 20, "capped": False})
    return rounds + [{"name": "recommender:3", "epoch_cap": 40, "intermediate": False, **last}]


def fake_result(method: str, seed: int, value: float, capped: bool = False, smoke: bool = False) -> dict:
    """What ``benchkit.run_kept`` leaves in ``result.json`` for one finished run."""
    args = seeds_bench.parse(["--smoke"] if smoke else [])
    return {
        "run_id": f"run-{method}-{seed}", "seconds": 300.0, "wall_s": 320.0, "cpu_s": 310.0,
        "test": {"Scientific": {"ndcg@10": value, "recall@10": 2 * value, "mrr": value},
                 "average": {"ndcg@10": value, "recall@10": 2 * value, "mrr": value}},
        "counts": {"Scientific": 1500, "average": 1500},
        "stages": [{**s, "best_value": 0.02, "seconds": 100.0} for s in stages_of(method, capped)],
        "load": {"start": [3, 3, 3], "end": [3, 3, 3], "mean_1min": 2.2, "max_1min": 3.1},
        "started": f"2026-12-03T1{seed - 2020}:00:00", "finished": f"2026-12-03T1{seed - 2020}:30:00",
        "recipe": seeds_bench.RECIPE[method], "method": method, "seed": seed,
        "overrides": seeds_bench.overrides_for(method, seed, args), "command": ["run"],
    }


def render(tmp_path: Path, values: dict = ORDERED, capped: str | None = None, smoke: bool = False) -> tuple[str, dict]:
    work = tmp_path / "work"
    for method, per_seed in values.items():
        for seed, value in zip(SEEDS, per_seed):
            folder = work / f"{method}-{seed}"
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps(fake_result(method, seed, value, method == capped, smoke)))
    out = tmp_path / "benchmarks.md"
    assert seeds_bench.main(["--render-only", "--work", str(work), "--out", str(out)]) == 0
    return out.read_text(), json.loads((tmp_path / f"{seeds_bench.SECTION}.json").read_text())


def idgenrec_claim(record: dict) -> tuple[list, str, str]:
    records = claims.load_records(claims.RESULTS_DIR)
    records[seeds_bench.SECTION] = claims.normalize(record)
    return claims.evaluate(next(s for s in claims.CLAIMS if s.paper == "IDGenRec"), records)


# ----------------------------------------------------------------------------- what runs
def test_the_methods_resolve_to_the_papers_schedule_on_one_domain():
    from mtrec.config import resolve
    from mtrec.plugins import Plugins

    catalogue = Plugins().load().catalogue
    args = seeds_bench.parse([])
    configs = {}
    for method in seeds_bench.METHODS:
        sets = seeds_bench.overrides_for(method, 2024, args)
        overrides = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sets.items()]
        configs[method] = resolve(catalogue, seeds_bench.RECIPE[method], overrides=overrides).config
    for method, cfg in configs.items():
        assert (cfg.domains.targets, cfg.domains.sources) == (["Scientific"], ["Scientific"]), method
        assert cfg.evaluation.valid_max_users is None, method  # validation on every user
    alternate = configs["alternate"].transfer.params
    assert (alternate["schedule"], alternate["rounds"], alternate["recommender_epochs"]) == ("alternate", 3, 10)
    assert (alternate["generator_epochs"], alternate["generator_max_examples"]) == (1, None)  # whole epochs
    assert alternate["last_round_epochs"] == seeds_bench.LAST_ROUND_CAP > 10
    rec_only = configs["rec-only"].transfer.params
    assert {k: v for k, v in rec_only.items() if k != "schedule"} == {k: v for k, v in alternate.items()
                                                                         if k != "schedule"}
    # alternate trains the generator in rounds 2 and 3: ID-only gets those two epochs
    assert (configs["id-only"].transfer.params["schedule"], configs["id-only"].transfer.params["rounds"]) == ("id-only", 2)
    assert configs["sasrec-ce"].encoder.name == "sasrec" and configs["sasrec-ce"].training.patience == 10
    gentle = configs[seeds_bench.GENTLE].transfer.params
    assert gentle["generator_lr"] == 1e-5 and alternate["generator_lr"] == 1e-4  # the recipe's
    assert {k: v for k, v in gentle.items() if k != "generator_lr"} == {k: v for k, v in alternate.items()
                                                                        if k != "generator_lr"}


def test_smoke_writes_only_to_temporary_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    args = seeds_bench.parse(["--smoke"])
    for path in (args.work, args.out, args.json_dir):
        assert REPO not in path.resolve().parents, path
    assert args.seeds == [2024, 2025]
    assert seeds_bench.overrides_for("alternate", 2024, args)["transfer.params.last_round_epochs"] == 1
    assert seeds_bench.overrides_for("sasrec-ce", 2024, args)["training.epochs"] == 1


# ----------------------------------------------------------------------------- the section and the record
def test_render_only_writes_table5_and_a_record_claims_reads(tmp_path):
    doc, record = render(tmp_path)
    assert f"<!-- {seeds_bench.SECTION}:start -->" in doc and f"## {seeds_bench.TITLE}" in doc
    assert "| NDCG@10 | 0.0010 ± 0.0002 | 0.0155 ± 0.0005 | 0.0205 ± 0.0005 | 0.0225 ± 0.0005 | 0.0410 ± 0.0010 |" in doc
    assert "recommender:1 10 (10); recommender:2 10 (10); recommender:3 25 (20)" in doc
    assert "No stage was capped." in doc and "**alternate > rec-only**" in doc
    assert "rec-only − id-only" in doc and "**rec-only > id-only**" in doc
    assert f"**{seeds_bench.SHORT[seeds_bench.GENTLE]} > rec-only**" in doc
    assert record["section"] == seeds_bench.SECTION and len(record["rows"]) == 15
    assert record["summary"]["verdicts"]["rec-only - id-only"] == {"Scientific": "rec-only > id-only"}
    row = next(r for r in record["rows"] if r["key"] == "alternate")
    assert [s["intermediate"] for s in row["stages"]] == [True, True, False]
    results, verdict, reason = idgenrec_claim(record)
    # the intermediate rounds end at their 10-epoch length with their best last: not capped, so the claim holds
    assert verdict == claims.HELD and "caveat" not in reason, reason
    assert [r.section for r in results if r.decides] == ["idgenrec-seeds"]
    assert all(c.seeds == 3 for c in results[0].comparisons)


def test_the_verdicts_follow_the_paired_differences(tmp_path):
    # alternate − rec-only per seed: +0.002, −0.001, +0.0005 (mean 0.0005, sd 0.0015: within 2 SE)
    values = {**ORDERED, "rec-only": [0.018, 0.022, 0.020]}
    doc, record = render(tmp_path, values)
    paired = record["summary"]["paired"]["alternate - rec-only"]["Scientific"]
    assert paired["mean"] == pytest.approx(0.0005) and paired["sd"] == pytest.approx(0.0015)
    assert paired["se"] == pytest.approx(0.0015 / math.sqrt(3))
    assert record["summary"]["verdicts"]["alternate - rec-only"] == {"Scientific": "no difference"}
    _, verdict, reason = idgenrec_claim(record)
    assert verdict == claims.NOT_DECIDED and "within 2 SE" in reason


def test_a_capped_last_round_leaves_its_comparisons_undecided(tmp_path):
    doc, record = render(tmp_path, capped="rec-only")
    verdicts = record["summary"]["verdicts"]
    assert verdicts["alternate - rec-only"]["Scientific"].startswith("undecided")
    assert verdicts["rec-only - id-only"]["Scientific"].startswith("undecided")
    assert verdicts["alternate - id-only"]["Scientific"] == "alternate > id-only"
    assert "Capped stages: rec-only seed 2024 `recommender:3`" in doc
    _, verdict, reason = idgenrec_claim(record)
    assert verdict == claims.NOT_DECIDED and "capped" in reason


def test_a_smoke_record_decides_nothing(tmp_path):
    doc, record = render(tmp_path, smoke=True)
    assert record["smoke"] and "— SMOKE" in doc
    assert {v for vs in record["summary"]["verdicts"].values() for v in vs.values()} == {seeds_bench.SMOKE_VERDICT}
    _, verdict, reason = idgenrec_claim(record)
    assert verdict == claims.NOT_DECIDED and "smoke" in reason


def test_missing_runs_render_nothing(tmp_path):
    (tmp_path / "work").mkdir()
    out = tmp_path / "doc.md"
    assert seeds_bench.main(["--render-only", "--work", str(tmp_path / "work"), "--out", str(out)]) == 1
    assert not out.exists() and not (tmp_path / f"{seeds_bench.SECTION}.json").exists()
