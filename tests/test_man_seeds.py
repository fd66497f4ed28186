"""``benchmarks/man_seeds.py`` without training: the runs it plans, and the section and record it renders from
finished runs (``--render-only`` over hand-made run folders), read back by ``benchmarks/claims.py``."""

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
seeds_bench = importlib.import_module("man_seeds")
claims = importlib.import_module("claims")

SEEDS = (2024, 2025, 2026)
# NDCG@10 per method and seed (the same on every column): MAN ahead of every SASRec beyond 2 SE
AHEAD = {"man": [0.030, 0.031, 0.0305], "sasrec-ce-single": [0.025, 0.026, 0.0255],
         "sasrec-ce-joint": [0.024, 0.0245, 0.025], "sasrec-bce-single": [0.015, 0.016, 0.0155]}


def fake_result(method: str, seed: int, value: float | dict, capped: bool = False, smoke: bool = False) -> dict:
    """What ``benchkit.run_kept`` leaves in ``result.json`` for one finished run; ``value``: NDCG@10 on every
    column, or per column."""
    values = value if isinstance(value, dict) else dict.fromkeys(seeds_bench.COLUMNS, value)
    stages = ["joint"] if method in ("man", "sasrec-ce-joint") else [f"single:{d}" for d in seeds_bench.DOMAINS]
    overrides = {"seed": seed, "training.threads": 1, **seeds_bench.method_sets()[method]}
    if smoke:
        overrides["training.epochs"] = seeds_bench.SMOKE_CAP
    cap = overrides["training.epochs"]
    best = cap if capped else min(14, cap)
    return {
        "run_id": f"run-{method}-{seed}", "seconds": 300.0, "wall_s": 320.0, "cpu_s": 310.0,
        "test": {d: {"ndcg@10": v, "recall@10": 2 * v, "mrr": v} for d, v in values.items()},
        "counts": {"Arts": 1000, "Office": 1000, "average": 2000},
        "stages": [{"name": n, "epochs_run": min(best + 6, cap), "best_epoch": best, "best_value": 0.03,
                    "epoch_cap": cap, "capped": capped, "seconds": 100.0} for n in stages],
        "load": {"start": [3, 3, 3], "end": [3, 3, 3], "mean_1min": 3.2, "max_1min": 3.9},
        "started": f"2026-12-03T0{seed - 2020}:00:00", "finished": f"2026-12-03T0{seed - 2020}:10:00",
        "recipe": seeds_bench.RECIPE[method], "method": method, "seed": seed, "overrides": overrides,
        "command": ["run"],
    }


def render(tmp_path: Path, values: dict = AHEAD, capped: str | None = None, smoke: bool = False) -> tuple[str, dict]:
    work = tmp_path / "work"
    for method, per_seed in values.items():
        for seed, value in zip(SEEDS, per_seed):
            folder = work / f"{method}-{seed}"
            folder.mkdir(parents=True)
            result = fake_result(method, seed, value, method == capped, smoke)
            (folder / "result.json").write_text(json.dumps(result))
    out = tmp_path / "benchmarks.md"
    assert seeds_bench.main(["--render-only", "--work", str(work), "--out", str(out)]) == 0
    record = json.loads((tmp_path / f"{seeds_bench.SECTION}.json").read_text())  # beside the trial doc
    return out.read_text(), record


def man_claim(record: dict) -> tuple[list, str, str]:
    records = claims.load_records(claims.RESULTS_DIR)
    records[seeds_bench.SECTION] = claims.normalize(record)
    return claims.evaluate(next(s for s in claims.CLAIMS if s.paper == "MAN"), records)


# ----------------------------------------------------------------------------- what runs
def test_the_methods_resolve_to_the_intended_configs():
    from mtrec.config import resolve

    sets = seeds_bench.method_sets()
    configs = {}
    for method in seeds_bench.METHODS:
        overrides = [f"{k}={seeds_bench.value_text(v)}" for k, v in sets[method].items()]
        configs[method] = resolve(seeds_bench.catalogue(), seeds_bench.RECIPE[method], overrides=overrides)
    man = configs["man"].config
    assert (man.training.epochs, man.training.eval_every, man.training.patience) == (60, 2, 5)
    assert (man.training.batch_size, man.training.lr) == (128, 2e-3)
    assert man.transfer.name == "joint"
    for method in ("sasrec-ce-single", "sasrec-ce-joint", "sasrec-bce-single"):
        cfg = configs[method].config
        assert (cfg.training.epochs, cfg.training.patience, cfg.training.eval_every) == (100, 10, 1)
    for method, cfg in configs.items():  # validation on every user, the man recipe's 200-user sample off
        assert cfg.config.evaluation.valid_max_users is None, method
    enc = {m: c.params["encoder"] for m, c in configs.items()}
    assert (enc["sasrec-ce-single"].loss, enc["sasrec-ce-single"].hidden) == ("ce", 64)
    assert (enc["sasrec-bce-single"].loss, enc["sasrec-bce-single"].hidden, enc["sasrec-bce-single"].negatives) == \
        ("bce", 20, 16)
    assert configs["sasrec-ce-single"].config.transfer.name == "single-domain"
    assert configs["sasrec-ce-joint"].config.transfer.name == "joint"


def test_the_data_is_section_man_s_sample(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(seeds_bench, "subsample", lambda n, seed, out: drawn.append((n, seed)) or out)
    args = seeds_bench.parse(["--work", str(tmp_path)])
    spec = seeds_bench.dataset_spec(args)
    assert drawn == [(1000, 2024)] and spec.name == "artsoffice-1000-overlap.yaml"
    assert "split_users_by_domain: false" in spec.read_text()
    assert args.seeds == [2024, 2025, 2026]


def test_smoke_writes_only_to_temporary_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the smoke's temporary folder goes
    args = seeds_bench.parse(["--smoke"])
    for path in (args.work, args.out, args.json_dir):
        assert REPO not in path.resolve().parents, path
    assert args.seeds == [2024, 2025]
    assert all(seeds_bench.overrides_for(m, 2024, args)["training.epochs"] == seeds_bench.SMOKE_CAP
               for m in seeds_bench.METHODS)
    assert seeds_bench.users(args) == seeds_bench.SMOKE_USERS


def test_only_the_real_doc_writes_the_committed_record(tmp_path):
    assert seeds_bench.parse([]).json_dir == claims.RESULTS_DIR
    assert seeds_bench.parse(["--out", str(tmp_path / "doc.md")]).json_dir == tmp_path.resolve()


# ----------------------------------------------------------------------------- the section and the record
def test_render_only_writes_the_section_and_a_record_claims_reads(tmp_path):
    doc, record = render(tmp_path)
    assert f"<!-- {seeds_bench.SECTION}:start -->" in doc and f"## {seeds_bench.TITLE}" in doc
    assert doc.count("| `man` | 20") == 3 and "paired difference man − sasrec-ce-joint" in doc
    assert "| **`man` mean ± std** | 3 seeds | 0.0305 ± 0.0005 |" in doc
    assert "`evaluation.valid_max_users=null`" in doc and "`encoder.params.loss=bce`" in doc
    assert "joint 20 (14)" in doc and "No stage was capped." in doc
    assert "**MAN > SASRec joint (CE)**" in doc
    assert record["section"] == seeds_bench.SECTION and not record["smoke"] and len(record["rows"]) == 12
    assert "at most 60 epochs" in record["protocol"] and "{" not in record["protocol"]
    man_row = next(r for r in record["rows"] if r["key"] == "man")
    assert man_row["stages"][0]["eval_every"] == 2 and man_row["stages"][0]["patience"] == 5
    for other in seeds_bench.COMPARED:
        assert set(record["summary"]["verdicts"][f"man - {other}"].values()) == {f"MAN > {seeds_bench.SHORT[other]}"}
    results, verdict, reason = man_claim(record)
    assert verdict == claims.HELD, reason
    assert [r.section for r in results if r.decides] == ["man-seeds"]
    assert len(results[0].comparisons) == 4 and all(c.seeds == 3 for c in results[0].comparisons)


def test_a_re_render_keeps_the_command_that_trained_the_runs(tmp_path):
    doc, record = render(tmp_path)  # no record beside the doc yet: the command is this invocation's
    assert "`python benchmarks/man_seeds.py --render-only --work" in doc
    trained = "python benchmarks/man_seeds.py --jobs 2"
    record_path = tmp_path / f"{seeds_bench.SECTION}.json"
    record_path.write_text(json.dumps({**record, "command": trained}))
    out = tmp_path / "benchmarks.md"
    assert seeds_bench.main(["--render-only", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    assert f"- **Command:** `{trained}`;" in out.read_text()
    assert json.loads(record_path.read_text())["command"] == trained


def test_the_verdicts_follow_the_paired_differences(tmp_path):
    # per seed, man − sasrec-ce-single: Arts +0.010 +0.012 +0.008 (mean 0.010, sd 0.002, SE 0.002/√3: beyond 2 SE);
    # Office +0.004 −0.002 +0.001 (mean 0.001, sd 0.003, SE 0.003/√3: within);
    # average −0.010 −0.012 −0.008 (behind)
    man = [{"Arts": 0.05, "Office": 0.05, "average": 0.05}] * 3
    single = [{"Arts": 0.05 - a, "Office": 0.05 - o, "average": 0.05 - v}
              for a, o, v in zip((0.010, 0.012, 0.008), (0.004, -0.002, 0.001), (-0.010, -0.012, -0.008))]
    values = {**AHEAD, "man": man, "sasrec-ce-single": single}
    doc, record = render(tmp_path, values)
    paired = record["summary"]["paired"]["man - sasrec-ce-single"]
    assert paired["Arts"]["mean"] == pytest.approx(0.010) and paired["Arts"]["sd"] == pytest.approx(0.002)
    assert paired["Arts"]["se"] == pytest.approx(0.002 / math.sqrt(3))
    assert paired["Office"]["mean"] == pytest.approx(0.001)
    assert paired["Office"]["se"] == pytest.approx(0.003 / math.sqrt(3))
    assert record["summary"]["verdicts"]["man - sasrec-ce-single"] == {
        "Arts": "MAN > SASRec single (CE)", "Office": "no difference", "average": "SASRec single (CE) > MAN"}
    assert "- Arts: mean paired difference +0.0100 (per seed +0.0100, +0.0120, +0.0080; 2 SE = 0.0023) → " \
           "**MAN > SASRec single (CE)**" in doc
    # within 2 SE on Office against the strongest per-domain baseline: the claim is not decided
    _, verdict, reason = man_claim(record)
    assert verdict == claims.NOT_DECIDED and "within 2 SE" in reason


def test_a_capped_run_leaves_its_comparisons_undecided(tmp_path):
    doc, record = render(tmp_path, capped="sasrec-ce-joint")
    verdicts = record["summary"]["verdicts"]
    assert all(v.startswith("undecided") for v in verdicts["man - sasrec-ce-joint"].values())
    assert verdicts["man - sasrec-ce-single"]["Arts"] == "MAN > SASRec single (CE)"
    assert "Capped stages: sasrec-ce-joint seed 2024 `joint`" in doc and "| **yes** |" in doc
    _, verdict, reason = man_claim(record)
    assert verdict == claims.NOT_DECIDED and "capped" in reason


def test_a_smoke_record_decides_nothing(tmp_path):
    doc, record = render(tmp_path, smoke=True)  # --render-only over runs trained at the smoke cap
    assert record["smoke"] and "— SMOKE" in doc
    assert {v for vs in record["summary"]["verdicts"].values() for v in vs.values()} == {seeds_bench.SMOKE_VERDICT}
    _, verdict, reason = man_claim(record)
    assert verdict == claims.NOT_DECIDED and "smoke" in reason


def test_missing_runs_render_nothing(tmp_path):
    (tmp_path / "work").mkdir()
    out = tmp_path / "doc.md"
    assert seeds_bench.main(["--render-only", "--work", str(tmp_path / "work"), "--out", str(out)]) == 1
    assert not out.exists() and not (tmp_path / f"{seeds_bench.SECTION}.json").exists()


@pytest.mark.parametrize("bad", [["--only", "nope"], ["--seeds"]])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(SystemExit):
        seeds_bench.parse(bad)
