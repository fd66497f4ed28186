"""The CUDA path: bf16 autocast, ``training.compile``, DDP over nccl.  Skipped without CUDA; run on a GPU
machine by ``bash benchmarks/gpu_check.sh`` (or ``pytest -m cuda``)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mtrec.builtins.seq2seq import Seq2Seq, Seq2SeqParams
from mtrec.builtins.trie_beam import beam_search, build_trie
from mtrec.config import TrainingConfig, resolve
from mtrec.engine import execute_run
from mtrec.plugins import Plugins
from mtrec.training import distributed as D
from mtrec.training.stage import Stage
from ddp_helpers import Linear  # the exact-step model the gloo DDP tests use
from ops_helpers import TINY_SETTINGS, write_tiny_dataset

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _trained_seq2seq(device: torch.device) -> tuple[Seq2Seq, dict, torch.Tensor, object]:
    """A tiny T5 taught "the next item is the successor of the last one" (fp32), its batch and trie."""
    length, codes, n_items = 3, 5, 40
    g = torch.Generator().manual_seed(1)
    rows = torch.unique(torch.randint(codes, (4 * n_items, length), generator=g) + codes * torch.arange(length), dim=0)
    table = torch.cat([torch.zeros(1, length, dtype=torch.long), rows[:n_items]])
    item_domain = torch.tensor([-1] + [i % 2 for i in range(n_items)])
    torch.manual_seed(0)
    params = Seq2SeqParams(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=2, num_heads=2, d_kv=8, dropout=0.0)
    model = Seq2Seq(params, table, item_domain, codes * length, ["A", "B"], max_len=6).to(device)
    items = torch.arange(1, n_items + 1, 2)
    successor = torch.zeros(n_items + 1, dtype=torch.long)
    successor[items] = items.roll(-1)
    gen = torch.Generator().manual_seed(5)
    history = items[torch.randint(items.numel(), (100, 6), generator=gen)]
    batch = {"history": history.to(device), "history_cross": history.to(device),
             "domain": torch.zeros(100, dtype=torch.long, device=device), "target": successor[history[:, -1]].to(device)}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(300):
        idx = torch.randint(100, (64,), generator=gen).to(device)
        loss = sum(model.loss({"history": batch["history"][idx], "target": batch["target"][idx]}).losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trie = build_trie(model.item_token_table[items.to(device)], items.to(device)).to(device)  # as TrieBeamDecoder does
    return model.eval(), batch, items, trie


def test_bf16_autocast_step_is_finite_and_beam_argmax_matches_fp32():
    device = torch.device("cuda")
    model, batch, _, trie = _trained_seq2seq(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = sum(model.loss({"history": batch["history"], "target": batch["target"]}).losses.values())
    assert math.isfinite(float(loss))
    optimizer.zero_grad()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        fp32, _ = beam_search(model, batch, trie, beam_size=5)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16, _ = beam_search(model, batch, trie, beam_size=5)
    assert float((fp32[:, 0] == batch["target"]).float().mean()) >= 0.95  # the model learned the rule
    assert torch.equal(fp32[:, 0], bf16[:, 0])


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _tiny_cuda_run(spec: Path, out: Path, *extra: str):
    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "sasrec", overrides=[*TINY_SETTINGS, f"dataset={spec}", "device=cuda",
                                                                "encoder.params.dropout=0.0",
                                                                "encoder.params.attn_dropout=0.0", *extra])
    return execute_run(resolved, plugins, progress=False, output_root=out)


def test_compiled_training_matches_eager(spec, tmp_path):
    eager = _tiny_cuda_run(spec, tmp_path / "eager", "training.compile=false")
    compiled = _tiny_cuda_run(spec, tmp_path / "compiled", "training.compile=true")
    losses = [h["loss"] for h in eager.stages[0]["history"] if "loss" in h]
    compiled_losses = [h["loss"] for h in compiled.stages[0]["history"] if "loss" in h]
    assert losses and all(math.isfinite(v) for v in compiled_losses)
    assert compiled_losses == pytest.approx(losses, rel=0.05, abs=0.02)
    for domain, row in eager.test.metrics.items():
        for metric, value in row.items():
            assert compiled.test.metrics[domain][metric] == pytest.approx(value, abs=0.05), (domain, metric)


def _train_linear(run_dir: Path, device: torch.device) -> tuple[dict, list[float]]:
    from mtrec.training.trainer import train_stage

    counter = iter(range(1, 100))
    run = SimpleNamespace(
        config=SimpleNamespace(training=TrainingConfig(epochs=3, batch_size=16, lr=0.05, amp=False)), device=device,
        seed=3, run_dir=run_dir, autocast=False, progress=False, stage_counter=lambda: next(counter),
        log_metrics=lambda rows: None, checkpoint_path=lambda name: run_dir / f"{name}.pt",
    )
    model = Linear()
    result = train_stage(run, model, Stage(name="fit", domains=[0], validate=False))
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}, [h["loss"] for h in result.history]


def test_ddp_world_of_one_over_nccl_trains_a_stage(tmp_path, monkeypatch):
    if not torch.distributed.is_available() or not torch.distributed.is_nccl_available():
        pytest.skip("needs nccl")
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    plain, plain_losses = _train_linear(tmp_path / "plain", device)
    torch.distributed.init_process_group("nccl", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1,
                                         device_id=device)
    try:
        monkeypatch.setattr(D, "is_distributed", lambda: True)  # a world of one still goes through DDP
        wrapped: list[nn.Module] = []
        wrap = D.wrap_ddp

        def spy(*args, **kwargs):
            ddp, undo = wrap(*args, **kwargs)
            wrapped.append(ddp)
            return ddp, undo

        monkeypatch.setattr(D, "wrap_ddp", spy)
        ddp, ddp_losses = _train_linear(tmp_path / "ddp", device)
    finally:
        torch.distributed.destroy_process_group()
    assert wrapped and isinstance(wrapped[0], nn.parallel.DistributedDataParallel)
    assert all(math.isfinite(v) for v in ddp_losses) and ddp_losses[-1] < ddp_losses[0]
    for key, value in plain.items():
        assert torch.allclose(ddp[key], value, atol=1e-4), key
