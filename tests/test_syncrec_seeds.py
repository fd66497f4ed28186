"""``benchmarks/syncrec_seeds.py`` without training: the runs it plans, and the section and record it renders
from finished runs (``--render-only`` over hand-made run folders), read back by ``benchmarks/claims.py``."""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
seeds_bench = importlib.import_module("syncrec_seeds")
claims = importlib.import_module("claims")

SEEDS = (2024, 2025, 2026)
# NDCG@10 on every domain per method and seed: syncrec ahead of every other method beyond 2 SE
VALUES = {"syncrec": [0.030, 0.031, 0.0305], "syncrec-ratio-0.2": [0.027, 0.028, 0.0272],
          "syncrec-no-lcntg": [0.029, 0.0298, 0.0296], "sasrec-single": [0.020, 0.0205, 0.021],
          "sasrec-ce": [0.025, 0.026, 0.0255]}
NTG = {"relative_ntg": {"Scientific": 0.30, "Arts": 0.36, "Office": 0.34}, "alpha": 0.9, "beta": 1.1,
       "temperature": 1.0, "learn_temperature": False, "correction": True}


def fake_result(method: str, seed: int, value: float, capped: bool = False) -> dict:
    """What ``benchkit.run_kept`` leaves in ``result.json`` for one finished run."""
    stages = ([f"single:{d}" for d in seeds_bench.DOMAINS] if seeds_bench.RECIPE[method] == "sasrec"
              else ["joint-ntg"])
    best = 100 if capped else 14
    result = {
        "run_id": f"run-{method}-{seed}", "seconds": 300.0, "wall_s": 320.0, "cpu_s": 310.0,
        "test": {d: {"ndcg@10": value, "recall@10": 2 * value, "mrr": value} for d in seeds_bench.COLUMNS},
        "counts": {"Scientific": 1500, "Arts": 1400, "Office": 1400, "average": 4300},
        "stages": [{"name": n, "epochs_run": min(best + 3, 100), "best_epoch": best, "best_value": value,
                    "epoch_cap": 100, "capped": capped, "seconds": 100.0} for n in stages],
        "load": {"start": [3, 3, 3], "end": [3, 3, 3], "mean_1min": 3.2, "max_1min": 3.9},
        "started": f"2026-12-03T0{seed - 2020}:00:00", "finished": f"2026-12-03T0{seed - 2020}:10:00",
        "recipe": seeds_bench.RECIPE[method], "method": method, "seed": seed,
        "overrides": {"seed": seed, "training.threads": 1, **seeds_bench.method_sets()[method]}, "command": ["run"],
    }
    if method == "syncrec":
        result["ntg"] = NTG
    return result


def render(tmp_path: Path, capped: str | None = None) -> tuple[str, dict]:
    work = tmp_path / "work"
    for method, values in VALUES.items():
        for seed, value in zip(SEEDS, values):
            folder = work / f"{method}-{seed}"
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps(fake_result(method, seed, value, method == capped)))
    out = tmp_path / "benchmarks.md"
    assert seeds_bench.main(["--render-only", "--work", str(work), "--out", str(out), "--json-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / f"{seeds_bench.SECTION}.json").read_text())
    return out.read_text(), record


def test_the_methods_match_the_syncrec_recipe():
    recipe = seeds_bench.catalogue().recipe("syncrec").config
    sets = seeds_bench.method_sets()
    assert recipe["training"]["epochs"] < seeds_bench.EPOCH_CAP  # the recipe's cap, raised
    for method in seeds_bench.METHODS:
        assert sets[method]["training.epochs"] == seeds_bench.EPOCH_CAP
        assert sets[method]["training.patience"] == recipe["training"]["patience"]
    for method in ("sasrec-single", "sasrec-ce"):
        assert sets[method]["encoder.params.hidden"] == recipe["encoder"]["params"]["hidden"]
        assert sets[method]["data.max_len"] == recipe["data"]["max_len"]
        assert sets[method]["training.batch_size"] == recipe["training"]["batch_size"]
        assert sets[method]["training.lr"] == recipe["training"]["lr"]
        assert sets[method]["transfer.name"] == "single-domain"
    assert (sets["sasrec-single"]["encoder.params.loss"], sets["sasrec-ce"]["encoder.params.loss"]) == ("bpr", "ce")
    assert sets["syncrec-no-lcntg"]["transfer.params.correction"] == "false"
    assert seeds_bench.experts("syncrec") == (4, 3) and seeds_bench.experts("syncrec-ratio-0.2") == (4, 1)
    assert seeds_bench.experts("sasrec-ce") is None


def test_smoke_writes_only_to_temporary_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the smoke's temporary folder goes
    args = seeds_bench.parse(["--smoke"])
    for path in (args.work, args.out, args.json_dir):
        assert REPO not in path.resolve().parents, path
    assert seeds_bench.overrides_for("syncrec", 2024, args)["training.epochs"] == 1


def test_render_only_writes_the_section_and_a_record_claims_reads(tmp_path):
    doc, record = render(tmp_path)
    assert f"<!-- {seeds_bench.SECTION}:start -->" in doc and f"## {seeds_bench.TITLE}" in doc
    assert doc.count("| `syncrec-ce` |") == 0 and doc.count("| `sasrec-ce` | 20") == 3 and "paired difference syncrec − sasrec-ce" in doc
    assert "**SyNCRec > SASRec (CE)**" in doc and "No stage was capped." in doc
    assert "| `syncrec` | 2024 | 0.300 | 0.360 | 0.340 | 0.900 | 1.100 | 1.000 |" in doc  # λ per domain
    assert record["section"] == seeds_bench.SECTION and not record["smoke"] and len(record["rows"]) == 15
    assert "patience 3, at most 100 epochs" in record["protocol"] and "{" not in record["protocol"]
    assert record["summary"]["verdicts"]["syncrec - sasrec-single"]["average"] == "SyNCRec > SASRec (BPR)"
    records = {seeds_bench.SECTION: claims.normalize(record)}
    spec = next(s for s in claims.CLAIMS if s.paper == "SyNCRec")
    results, verdict, reason = claims.evaluate(spec, records)
    assert verdict == claims.HELD, reason
    assert len(results[0].comparisons) == 6 and all(c.seeds == 3 for c in results[0].comparisons)


def test_a_capped_run_leaves_its_comparisons_undecided(tmp_path):
    doc, record = render(tmp_path, capped="sasrec-ce")
    verdicts = record["summary"]["verdicts"]
    assert all(v.startswith("undecided") for v in verdicts["syncrec - sasrec-ce"].values())
    assert verdicts["syncrec - sasrec-single"]["Arts"] == "SyNCRec > SASRec (BPR)"
    assert "Capped stages: sasrec-ce seed 2024" in doc
    _, verdict, _ = claims.evaluate(next(s for s in claims.CLAIMS if s.paper == "SyNCRec"),
                                    {seeds_bench.SECTION: claims.normalize(record)})
    assert verdict == claims.NOT_DECIDED


def test_missing_runs_render_nothing(tmp_path):
    (tmp_path / "work").mkdir()
    out = tmp_path / "doc.md"
    assert seeds_bench.main(["--render-only", "--work", str(tmp_path / "work"), "--out", str(out),
                             "--json-dir", str(tmp_path)]) == 1
    assert not out.exists() and not (tmp_path / f"{seeds_bench.SECTION}.json").exists()


@pytest.mark.parametrize("bad", [["--only", "nope"], ["--seeds"]])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(SystemExit):
        seeds_bench.parse(bad)
