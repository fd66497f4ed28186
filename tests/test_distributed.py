"""DDP through torch.distributed (gloo on CPU, 2 processes on this machine).

* evaluation: users are sharded across ranks and gathered; the report equals a single process's
  exactly (no user counted twice or dropped);
* training: with equal per-rank batches, one DDP epoch moves the parameters exactly as one
  process on the whole batch does, and the replicas stay identical;
* the CLI: ``torchrun --nproc_per_node=2 -m mtrec run`` ends with metrics close to a
  single-process run, one registry run written by rank 0 only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mtrec.config import TrainingConfig, resolve
from mtrec.plugins import Plugins
from mtrec.training import distributed as D
from mtrec.training.stage import DomainLoss, Stage
from ddp_helpers import Linear
from ops_helpers import REPO, TINY_SETTINGS, mtrec, read_metrics, run_args, write_tiny_dataset

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


# --------------------------------------------------------------------------- exact steps (ddp_helpers.Linear)


def fake_run(run_dir: Path) -> SimpleNamespace:
    counter = iter(range(1, 100))
    return SimpleNamespace(
        config=SimpleNamespace(training=TrainingConfig(epochs=3, batch_size=16, lr=0.05)), device=torch.device("cpu"),
        seed=3, run_dir=run_dir, autocast=False, progress=False, stage_counter=lambda: next(counter),
        log_metrics=lambda rows: None, checkpoint_path=lambda name: run_dir / f"{name}.pt",
    )


def train_linear(run_dir: Path) -> dict[str, torch.Tensor]:
    from mtrec.training.trainer import train_stage

    model = Linear()
    train_stage(fake_run(run_dir), model, Stage(name="fit", domains=[0], validate=False))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- the evaluated model


def sasrec_report(spec: Path, run_dir: Path) -> dict:
    """Validation and test reports of a fixed, untrained-but-seeded SASRec (same on every rank)."""
    from mtrec.engine import load_run_dataset
    from mtrec.run_context import RunContext

    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "sasrec", overrides=[*TINY_SETTINGS, f"dataset={spec}",
                                                                "evaluation.batch_size=7"])
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), run_dir, progress=False)
    torch.manual_seed(11)
    model = run.build_encoder().eval()
    models = {d: model for d in run.all_domains}
    out = {}
    for split in ("valid", "test"):
        report = run.evaluate(models, split)
        out[split] = {"metrics": report.metrics, "counts": report.counts}
    return out


def _worker(rank: int, world: int, init_file: str, spec: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        assert D.world().size == world and D.is_main() == (rank == 0)
        result = {"report": sasrec_report(Path(spec), Path(out) / f"run{rank}"),
                  "params": train_linear(Path(out) / f"lin{rank}")}
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def two_ranks(spec, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, str(out / "init"), str(spec), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_sharded_evaluation_equals_one_process_exactly(spec, two_ranks, tmp_path):
    single = sasrec_report(spec, tmp_path)
    for rank in two_ranks:
        assert rank["report"] == single  # every metric, bit for bit, and every count
    assert single["test"]["counts"]["average"] == 2 * 96  # every user of both domains, once


def test_ddp_epochs_equal_one_process_on_the_whole_batch(two_ranks, tmp_path):
    single = train_linear(tmp_path)
    first, second = (r["params"] for r in two_ranks)
    for key in single:
        assert torch.equal(first[key], second[key])  # the replicas never drift apart
        torch.testing.assert_close(first[key], single[key], rtol=1e-5, atol=1e-6)
    assert not torch.equal(single["layer.weight"], Linear().layer.weight.detach())  # it did train


def test_shard_covers_every_index_once():
    import numpy as np

    idx = np.array([3, 5, 8, 13, 21, 34, 55])
    assert D.shard(idx).tolist() == idx.tolist()  # a world of one keeps everything


def test_loss_module_routes_through_forward_and_syncs_the_combiner():
    class Weighted(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(2.0))

        def forward(self, loss: DomainLoss):
            return self.w * loss.losses["all"]

    model, combine = Linear(), Weighted()
    module = D.LossModule(model, combine)
    batch = model.train_tensors(None, [0])
    loss = module(batch)
    loss.backward()
    assert combine.w.grad is not None and model.layer.weight.grad is not None
    assert {n for n, _ in module.named_parameters()} == {"model.layer.weight", "model.layer.bias", "combine.w"}


# --------------------------------------------------------------------------- torchrun, end to end


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(spec, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    settings = [*TINY_SETTINGS, "training.epochs=6", "training.patience=10", "training.batch_size=16"]
    single = mtrec(run_args(spec, "--metrics-json", str(tmp_path / "one.json"), "--name", "one", settings=settings),
                   tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = mtrec(run_args(spec, "--metrics-json", str(tmp_path / "two.json"), "--name", "two", settings=settings),
                tmp_path, prefix=torchrun)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("test metrics") == 1  # rank 0 alone reports
    one, two = read_metrics(tmp_path / "one.json"), read_metrics(tmp_path / "two.json")
    assert one["counts"] == two["counts"]  # every test user scored once
    for metric in ("recall@10", "ndcg@10"):
        a, b = one["test"]["average"][metric], two["test"]["average"][metric]
        assert a > 0.2 and abs(a - b) <= 0.1 * a + 0.02, (metric, a, b)
    from mtrec.registry import open_registry

    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        runs = {r["name"]: r for r in reg.list_runs()}
        assert set(runs) == {"one", "two"} and runs["two"]["status"] == "finished"
        final = [m for m in reg.metrics(runs["two"]["id"], stage="final", name="ndcg", k=10)]
        assert len(final) == 3  # A, B, average: written once, by rank 0


@pytest.mark.slow
def test_torchrun_run_killed_and_resumed_equals_uninterrupted(spec, tmp_path):
    """kill -9 of both ranks in the second stage, then `torchrun ... run --resume ID`: same metrics, exactly."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two_stages = run_args(spec, "--set", "transfer.name=unified-then-lora", "--set", "transfer.params.lora_epochs=2",
                          "--set", "transfer.params.r=2", "--set", "training.epochs=2")
    full = mtrec(two_stages + ["--metrics-json", str(tmp_path / "full.json")], tmp_path, prefix=torchrun)
    assert full.returncode == 0, full.stderr[-3000:]
    runs = tmp_path / "home" / "runs"
    before = {p.name for p in runs.iterdir()}
    killed = mtrec(two_stages, tmp_path, prefix=torchrun, runner=REPO / "tests" / "ops_fault_runner.py",
                   extra_env={"MTREC_TEST_FAULT": "stage:lora:A:1"})
    assert killed.returncode != 0 and "SIGKILL" in killed.stderr
    (run_id,) = {p.name for p in runs.iterdir()} - before
    resumed = mtrec(["run", "--resume", run_id, "--no-progress", "--metrics-json", str(tmp_path / "resumed.json")],
                    tmp_path, prefix=torchrun)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_metrics(tmp_path / "resumed.json")["test"] == read_metrics(tmp_path / "full.json")["test"]
