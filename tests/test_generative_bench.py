"""``benchmarks/generative.py``: what each row of the multi-domain benchmark runs, GMC's Table 4 ablation
included, and the verdicts its section reads off hand-made rows.  Nothing is trained."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
generative = importlib.import_module("generative")
generative_report = importlib.import_module("generative_report")
generative_rows = importlib.import_module("generative_rows")


def _sets(cmd: list[str]) -> dict[str, str]:
    return dict(cmd[i + 1].split("=", 1) for i, x in enumerate(cmd) if x == "--set")


@pytest.mark.parametrize("profile,plugin", [("cpu", "gmc"), ("smoke", "gmc"), ("paper", "gmc-paper")])
def test_the_ablation_runs_gmc_with_per_domain_codebooks(tmp_path, profile, plugin):
    args = SimpleNamespace(profile=profile, threads=1, device="cpu", work=tmp_path)
    spec = tmp_path / "spec.yaml"
    gmc_cmd, gmc_sets, _ = generative.run_plan("gmc", 2025, args, spec)
    cmd, overrides, run_dir = generative.run_plan("gmc-shared-off", 2025, args, spec)
    assert cmd[cmd.index("--plugin") + 1] == plugin == gmc_cmd[gmc_cmd.index("--plugin") + 1]
    assert overrides == {**gmc_sets, "identifier.params.shared_codebooks": False}
    assert _sets(cmd) == {**_sets(gmc_cmd), "identifier.params.shared_codebooks": "false"}
    assert run_dir == tmp_path / "runs" / "gmc-shared-off-2025"
    assert "--name" in cmd and cmd[cmd.index("--name") + 1] == "bench-gmc-shared-off-2025"


@pytest.mark.parametrize("profile", ["cpu", "smoke", "paper"])
def test_the_unified_off_ablation_trains_one_model_per_domain_on_gmcs_identifier(tmp_path, profile):
    args = SimpleNamespace(profile=profile, threads=1, device="cpu", work=tmp_path)
    _, gmc_sets, _ = generative.run_plan("gmc", 2024, args, tmp_path / "spec.yaml")
    cmd, overrides, _ = generative.run_plan("gmc-unified-off", 2024, args, tmp_path / "spec.yaml")
    assert overrides["transfer.name"] == "single-domain"
    # gmc's LoRA settings belong to the transfer the switch replaces; everything else is gmc's
    assert {k: v for k, v in overrides.items() if k != "transfer.name"} == \
        {k: v for k, v in gmc_sets.items() if not k.startswith("transfer.params.")}
    assert "identifier.params.shared_codebooks" not in overrides  # the shared identifier stays


def _row(recipe: str, seed: int, value: float) -> dict:
    return {"recipe": recipe, "seed": seed, "overrides": {"training.epochs": 40},
            "test": {"average": {"ndcg@10": value}},
            "stages": [{"name": "unified", "epochs_run": 20, "best_epoch": 16, "epoch_cap": 40}]}


def test_the_section_compares_gmc_with_its_ablation_paired_by_seed():
    seeds = [2024, 2025, 2026]
    rows = [_row("gmc", s, v) for s, v in zip(seeds, (0.022, 0.023, 0.021))]
    rows += [_row("gmc-shared-off", s, v) for s, v in zip(seeds, (0.027, 0.029, 0.026))]
    (line,) = generative_report.verdict(rows, seeds)
    # differences -0.005, -0.006, -0.005: mean -0.0053, std 0.0006, SE 0.0003
    assert line.startswith("- gmc − gmc-shared-off, average NDCG@10 paired by seed: -0.0053 (std 0.0006 over 3")
    assert "**gmc < gmc-shared-off**" in line
    rows[-1]["stages"][0].update(epochs_run=40, best_epoch=40)  # capped: decides nothing
    assert "not decided" in generative_report.verdict(rows, seeds)[0]


@pytest.mark.parametrize("profile", ["cpu", "smoke", "paper"])
def test_the_long_fine_tuning_and_tiger_share_one_per_domain_protocol(tmp_path, profile):
    args = SimpleNamespace(profile=profile, threads=1, device="cpu", work=tmp_path)
    spec = tmp_path / "spec.yaml"
    _, gmc_sets, _ = generative.run_plan("gmc", 2024, args, spec)
    _, tiger_sets, _ = generative.run_plan("tiger", 2024, args, spec)
    _, long_sets, _ = generative.run_plan("gmc-full-finetune-long", 2024, args, spec)
    tiger_cmd, tiger8_sets, _ = generative.run_plan("tiger-patience-8", 2024, args, spec)
    assert tiger_cmd[tiger_cmd.index("--plugin") + 1] == ("tiger-paper" if profile == "paper" else "tiger")
    # tiger's stages and gmc's per-domain stages: patience 8, the lr halved after every 2 misses
    assert (tiger8_sets["training.patience"], tiger8_sets["training.lr_decay_patience"]) == (8, 2)
    assert (long_sets["transfer.params.lora_patience"], long_sets["transfer.params.lora_lr_decay_patience"]) == (8, 2)
    # everything else is the base recipe's: tiger's own, and gmc's unified stage untouched
    assert {k: v for k, v in tiger8_sets.items() if k not in ("training.patience", "training.lr_decay_patience")} == \
        {k: v for k, v in tiger_sets.items() if k != "training.patience"}
    assert {k: v for k, v in long_sets.items() if not k.startswith("transfer.params.")} == \
        {k: v for k, v in gmc_sets.items() if not k.startswith("transfer.params.")}
    assert long_sets["transfer.params.mode"] == "full" and long_sets["transfer.params.lora_lr"] == 3e-3


T5_SHAPE = ("d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv")


def _plans(tmp_path, profile: str, *recipes: str) -> list[dict]:
    args = SimpleNamespace(profile=profile, threads=1, device="cpu", work=tmp_path)
    return [generative.run_plan(r, 2024, args, tmp_path / "spec.yaml")[1] for r in recipes]


def test_the_paper_size_pair_shares_the_papers_t5_and_differs_only_in_what_gmc_adds(tmp_path):
    from mtrec.builtins.seq2seq import Seq2SeqParams

    tiger_sets, gmc_big, tiger_big = _plans(tmp_path, "cpu", "tiger", "gmc-t5-paper-size", "tiger-t5-paper-size")
    shape = T5_SHAPE
    # the papers' T5 is the seq2seq encoder's defaults
    defaults = Seq2SeqParams()
    assert {k: gmc_big[f"encoder.params.{k}"] for k in shape} == {k: getattr(defaults, k) for k in shape}
    assert gmc_big["training.lr"] == tiger_big["training.lr"] == 1e-3
    # the same T5, lr and protocol on both sides; gmc keeps the paper's LoRA, its cap above the patience
    assert {k: v for k, v in gmc_big.items() if not k.startswith("transfer.params.")} == \
        {k: v for k, v in tiger_big.items()}
    assert gmc_big["transfer.params.lora_epochs"] > gmc_big["training.patience"] == 8
    assert "transfer.params.mode" not in gmc_big
    # everything else is the base recipe's
    changed = {f"encoder.params.{k}" for k in shape} | {"training.lr", "training.patience", "training.lr_decay_patience"}
    assert {k: v for k, v in tiger_big.items() if k not in changed} == \
        {k: v for k, v in tiger_sets.items() if k not in changed}


def test_the_paper_size_full_fine_tuning_is_the_long_one_at_the_papers_t5s_lr(tmp_path):
    gmc_big, long_sets, full_big = _plans(tmp_path, "cpu", "gmc-t5-paper-size", "gmc-full-finetune-long",
                                          "gmc-t5-paper-size-full-finetune")
    per_domain = {k: v for k, v in full_big.items() if k.startswith("transfer.params.")}
    # the long fine-tuning's per-domain protocol, at the unified stage's lr: 1e-3 here, 3e-3 for the small T5
    assert per_domain == {**{k: v for k, v in long_sets.items() if k.startswith("transfer.params.")},
                          "transfer.params.lora_lr": full_big["training.lr"]} and full_big["training.lr"] == 1e-3
    assert long_sets["transfer.params.lora_lr"] == 3e-3 and per_domain["transfer.params.mode"] == "full"
    # the unified stage is gmc-t5-paper-size's
    assert {k: v for k, v in full_big.items() if k not in per_domain} == \
        {k: v for k, v in gmc_big.items() if not k.startswith("transfer.params.")}


def test_the_smoke_profile_keeps_its_small_t5_and_single_epochs_over_a_rows_switches(tmp_path):
    gmc_sets, gmc_big, long_sets = _plans(tmp_path, "smoke", "gmc", "gmc-t5-paper-size", "gmc-full-finetune-long")
    assert all(gmc_big[f"encoder.params.{k}"] == gmc_sets[f"encoder.params.{k}"] for k in T5_SHAPE)
    assert gmc_big["transfer.params.lora_epochs"] == long_sets["transfer.params.lora_epochs"] == 1
    assert gmc_big["training.patience"] == 8  # a switch the smoke profile does not set still applies


def _run_folder(home: Path, run_id: str, config: dict, finished: bool = False) -> None:
    folder = home / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    if finished:
        (folder / "metrics.json").write_text("{}")


def test_resume_continues_the_newest_unfinished_run_started_with_the_rows_config(tmp_path, monkeypatch):
    args = SimpleNamespace(profile="cpu", threads=1, device="cpu", work=tmp_path, resume=True)
    _, overrides, run_dir = generative.run_plan("tiger-t5-paper-size", 2025, args, tmp_path / "spec.yaml")
    config = {"name": "bench-tiger-t5-paper-size-2025", "seed": 2025, "device": "cpu",
              "encoder": {"params": {"d_ff": 1024, "num_layers": 4, "num_decoder_layers": 4, "num_heads": 6,
                                     "d_kv": 64}},
              "training": {"lr": 1e-3, "patience": 8, "lr_decay_patience": 2, "threads": 1}}
    for key, value in overrides.items():  # the profile's own overrides, as the run recorded them
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    home = tmp_path / "home"
    _run_folder(home, "20261201-000000-aaaaaa", config)                         # older
    _run_folder(home, "20261202-000000-bbbbbb", config)                         # the one to continue
    _run_folder(home, "20261203-000000-cccccc", config, finished=True)          # finished: nothing to continue
    _run_folder(home, "20261204-000000-dddddd", {**config, "seed": 2026})       # another row's
    _run_folder(home, "20261205-000000-eeeeee", {**config, "training": {**config["training"], "lr": 3e-3}})
    calls = []

    def fake_run_cli(label, cmd, folder, env, *, continuing=False):
        calls.append((cmd, continuing))
        return {"test": {}, "counts": {}, "stages": [], "run_id": "x", "wall_s": 1.0, "cpu_s": 1.0, "load": {},
                "started": "", "finished": ""}

    monkeypatch.setattr(generative, "run_cli", fake_run_cli)
    monkeypatch.setattr(generative, "identifier_stats", lambda work, run_id: {})
    row = generative.run_recipe("tiger-t5-paper-size", 2025, args, tmp_path / "spec.yaml")
    (cmd, continuing), = calls
    # the run started with an lr since changed (eeeeee) is not the row any more; bbbbbb is
    assert continuing and cmd[cmd.index("--resume") + 1] == "20261202-000000-bbbbbb"
    assert "--set" not in cmd and "--plugin" not in cmd  # a resumed run keeps the config it started with
    assert cmd[cmd.index("--metrics-json") + 1] == str(run_dir / "metrics.json") and row["continued"]
    # without --resume, or with nothing left unfinished, the row starts afresh
    calls.clear()
    generative.run_recipe("tiger-t5-paper-size", 2025, SimpleNamespace(**{**vars(args), "resume": False}),
                          tmp_path / "spec.yaml")
    generative.run_recipe("tiger-t5-paper-size", 2024, args, tmp_path / "spec.yaml")
    assert [("--resume" in cmd, continuing) for cmd, continuing in calls] == [(False, False), (False, False)]


def test_a_run_of_one_row_keeps_every_finished_row_in_the_record():
    args = SimpleNamespace(only=["tiger-t5-paper-size"], seeds=[2024], profile="cpu")
    done = {f"{r}-{s}": {"recipe": r, "seed": s} for r in ("gmc", "tiger", "tiger-t5-paper-size") for s in (2024, 2025)}
    done["gmc-2031"] = {"recipe": "gmc", "seed": 2031}  # a seed outside the table is not a row of it
    rows, shown, pending = generative.whole_record(done, args)
    assert sorted((r["recipe"], r["seed"]) for r in rows) == sorted(
        (r, s) for r in ("gmc", "tiger", "tiger-t5-paper-size") for s in (2024, 2025))
    assert shown.seeds == [2024, 2025, 2026] and shown.only == list(generative_rows.RECIPES) and shown.profile == "cpu"
    assert "tiger-t5-paper-size seed 2026" in pending and "gmc seed 2026" in pending
    assert "gmc seed 2024" not in pending and len(pending) == 3 * len(generative_rows.RECIPES) - 6


def test_gmc_rows_that_differ_only_per_domain_share_their_unified_stage(tmp_path):
    args = SimpleNamespace(profile="cpu", threads=1, device="cpu", work=tmp_path)

    def same(a: str, b: str) -> bool:
        return generative_rows.same_unified_stage(a, generative.run_plan(a, 2024, args, tmp_path)[1],
                                                  b, generative.run_plan(b, 2024, args, tmp_path)[1])

    assert same("gmc-t5-paper-size", "gmc-t5-paper-size-full-finetune")
    assert same("gmc", "gmc-full-finetune") and same("gmc-full-finetune", "gmc-full-finetune-long")
    assert not same("gmc", "gmc-t5-paper-size")            # another T5
    assert not same("gmc", "gmc-shared-off")               # another identifier
    assert not same("gmc", "gmc-unified-off")              # no unified stage
    assert not same("tiger", "tiger")                      # tiger has none either
    todo = [(r, s) for s in (2025, 2026) for r in ("gmc-t5-paper-size", "tiger-t5-paper-size",
                                                    "gmc-t5-paper-size-full-finetune")]
    assert generative.unified_followers(todo, args) == {
        ("gmc-t5-paper-size", s): [("gmc-t5-paper-size-full-finetune", s)] for s in (2025, 2026)}


def test_a_row_takes_the_unified_stage_of_a_finished_row_of_its_seed(tmp_path, monkeypatch):
    args = SimpleNamespace(profile="cpu", threads=1, device="cpu", work=tmp_path, resume=False)
    source = tmp_path / "home" / "runs" / "20261205-000000-source"
    (source / "checkpoints" / "resume").mkdir(parents=True)
    _, sets, _ = generative.run_plan("gmc-t5-paper-size", 2025, args, tmp_path)
    done = {"gmc-t5-paper-size-2025": {"recipe": "gmc-t5-paper-size", "seed": 2025, "overrides": sets,
                                       "run_id": source.name}}
    # the source must still hold its unified stage's resume file
    assert generative.unified_source("gmc-t5-paper-size-full-finetune", 2025, args, done) is None
    (source / "checkpoints" / "resume" / "001-unified.done.pt").write_bytes(b"done")
    assert generative.unified_source("gmc-t5-paper-size-full-finetune", 2024, args, done) is None  # another seed
    assert generative.unified_source("tiger-t5-paper-size", 2025, args, done) is None  # tiger has no unified stage

    calls = []
    monkeypatch.setattr(generative, "run_cli", lambda label, cmd, folder, env, *, continuing=False: calls.append(
        (cmd, continuing)) or {"test": {}, "counts": {}, "stages": [], "run_id": "20261205-000001-new", "wall_s": 1.0,
                               "cpu_s": 1.0, "load": {}, "started": "", "finished": ""})
    monkeypatch.setattr(generative, "identifier_stats", lambda work, run_id: {})
    row = generative.run_recipe("gmc-t5-paper-size-full-finetune", 2025, args, tmp_path / "spec.yaml", done)
    (cmd, continuing), = calls
    assert not continuing and "--resume" not in cmd and f"transfer.from_run={source.name}" in cmd
    assert cmd[cmd.index("--plugin") + 1] == "gmc" and "transfer.params.mode=full" in cmd
    assert "gmc-t5-paper-size` seed 2025 (run 20261205-000000-source" in row["note"]
    assert "transfer.from_run" not in row["overrides"]  # the row's definition stays that of every seed
