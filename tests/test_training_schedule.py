"""The trainer's learning-rate schedule, epoch-0 scoring of fine-tuning stages, and length-bucketed batches.

Every stage here runs through the real :func:`mtrec.training.trainer.train_stage` on a tiny
linear model with a fake run (no dataset): validation is a function of the weights the test
controls, so "training only makes validation worse" is exact.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from mtrec.config import TrainingConfig
from mtrec.errors import UserError
from mtrec.evaluation.evaluator import EvalReport
from mtrec.training import batching, trainer
from mtrec.training.batching import epoch_batches, epoch_generator
from mtrec.training.checkpoint import load_checkpoint, step_paths
from mtrec.training.stage import DomainLoss, Stage
from mtrec.training.trainer import stage_key, train_stage

N = 64  # training examples; batch 16 -> 4 optimizer steps per epoch


class Linear(nn.Module):
    """y = w.x + b, mean-squared loss, no randomness of its own; records every batch it trains on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(4, 1)
        self.batches: list[torch.Tensor] = []

    def train_tensors(self, run, domains):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(N, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(N, generator=g)
        return {"x": x, "y": y, "i": torch.arange(N)}

    def loss(self, batch):
        self.batches.append(batch["i"].clone())
        mse = ((self.layer(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
        return DomainLoss({"all": mse}, {"all": batch["x"].shape[0]})

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}


class WithLengths(Linear):
    """Reports a length per example (3 * i mod 17 + 1: many distinct values, a few ties)."""

    def example_lengths(self, tensors):
        return (tensors["i"] * 3) % 17 + 1


def fake_run(run_dir: Path, metric=None, **training) -> SimpleNamespace:
    """A RunContext stand-in: ``metric(model) -> float`` is the validation ndcg@10."""
    counter = iter(range(1, 100))
    logged: list[dict] = []
    evaluated: list[float] = []

    def evaluate(models, split, domains):
        model = next(iter(models.values()))
        value = float(metric(model))
        evaluated.append(value)
        return EvalReport(split, metrics={"average": {"ndcg@10": value}})

    cfg = dict(epochs=3, batch_size=16, lr=0.05) | training
    return SimpleNamespace(
        config=SimpleNamespace(training=TrainingConfig(**cfg)), device=torch.device("cpu"),
        seed=3, run_dir=run_dir, autocast=False, progress=False, stage_counter=lambda: next(counter),
        log_metrics=logged.extend, checkpoint_path=lambda name: run_dir / f"{name}.pt",
        evaluate=evaluate, logged=logged, evaluated=evaluated,
    )


def record_lrs(monkeypatch) -> list[float]:
    """The lr every AdamW step uses."""
    lrs: list[float] = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    return lrs


def fit(run, stage: Stage | None = None, model: nn.Module | None = None) -> tuple[nn.Module, object]:
    model = model or Linear()
    result = train_stage(run, model, stage or Stage(name="fit", domains=[0], validate=False))
    return model, result


# --------------------------------------------------------------------------- lr schedule


def test_cosine_schedule_with_warmup_follows_the_formula(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    fit(fake_run(tmp_path, lr_schedule="cosine", warmup_steps=3))
    total, warm, lr = 3 * 4, 3, 0.05  # 3 epochs x 4 batches
    assert len(lrs) == total
    expected = [lr * k / warm if k < warm else lr * 0.5 * (1 + math.cos(math.pi * (k - warm) / (total - warm)))
                for k in range(total)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert lrs[0] == 0.0 and lrs[warm] == pytest.approx(lr)  # the top right after warm-up
    assert lrs[-1] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 8 / 9)))  # near 0 at the end


def test_linear_schedule_uses_the_stage_epochs_and_batch_size(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    # the stage's own epochs (2) and batch size (32 -> 2 batches per epoch) override the run's
    fit(fake_run(tmp_path, lr_schedule="linear", warmup_steps=1),
        Stage(name="fit", domains=[0], validate=False, epochs=2, batch_size=32, lr=0.1))
    total = 2 * 2
    assert lrs == pytest.approx([0.0] + [0.1 * (total - k) / (total - 1) for k in range(1, total)])


def test_constant_without_warmup_is_a_fixed_lr_and_no_scheduler(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    cfg = TrainingConfig()
    assert (cfg.lr_schedule, cfg.warmup_steps, cfg.length_buckets) == ("constant", 0, True)
    assert trainer.lr_scheduler(torch.optim.AdamW(Linear().parameters()), cfg, 10, cfg.warmup_steps) is None
    fit(fake_run(tmp_path))
    assert lrs == [0.05] * 12
    lrs.clear()
    fit(fake_run(tmp_path / "warm", warmup_steps=4))  # constant with warm-up
    assert lrs == pytest.approx([0.0, 0.0125, 0.025, 0.0375] + [0.05] * 8)


def kill_after_checkpoint(monkeypatch, epoch: int) -> None:
    """The process "dies" right after the resume checkpoint of ``epoch`` is written."""
    original = trainer._save_last

    def die(path, model, optimizer, stage, state):
        original(path, model, optimizer, stage, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer, "_save_last", die)


def test_resume_with_a_cosine_schedule_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    settings = dict(lr_schedule="cosine", warmup_steps=2, epochs=4)
    whole, _ = fit(fake_run(tmp_path / "whole", **settings))

    kill_after_checkpoint(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        fit(fake_run(tmp_path / "cut", **settings))
    monkeypatch.undo()  # alive again: the resumed run checkpoints normally
    last = load_checkpoint(step_paths(tmp_path / "cut", stage_key(1, "fit"))[1])
    assert last["epoch"] == 2 and last["scheduler"]["last_epoch"] == 8  # 2 epochs x 4 steps

    lrs = record_lrs(monkeypatch)
    resumed, result = fit(fake_run(tmp_path / "cut", **settings))
    assert result.resumed_from_epoch == 2 and len(lrs) == 8
    assert lrs[0] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 6 / 14)))  # step 8 of 16, not step 0
    for key, value in whole.weights().items():
        assert torch.equal(resumed.weights()[key], value), key


def scripted(values: list[float]):
    """A validation metric that returns ``values`` in order, whatever the weights."""
    it = iter(values)
    return lambda model: next(it)


def test_plateau_schedule_decays_after_each_validation_without_a_new_best(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    # best at epoch 2; epochs 3 and 4 bring none: each halves the lr of the epochs after it; patience 3 stops at 5
    run = fake_run(tmp_path, scripted([0.1, 0.2, 0.15, 0.19, 0.18]), lr_schedule="plateau", warmup_steps=2,
                   epochs=10, patience=3)
    _, result = fit(run, Stage(name="fit", domains=[0]))
    assert (result.epochs_run, result.best_epoch) == (5, 2)
    per_epoch = [lrs[k:k + 4] for k in range(0, 20, 4)]
    assert per_epoch[0] == pytest.approx([0.0, 0.025, 0.05, 0.05])  # warm-up, then constant
    assert per_epoch[1] == per_epoch[2] == pytest.approx([0.05] * 4)  # epoch 2 improved: no decay
    assert per_epoch[3] == pytest.approx([0.025] * 4) and per_epoch[4] == pytest.approx([0.0125] * 4)


def test_plateau_schedule_with_patience_two_decays_every_second_miss(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    run = fake_run(tmp_path, scripted([0.3, 0.1, 0.1, 0.1, 0.1]), lr_schedule="plateau", epochs=5, patience=9,
                   lr_decay_patience=2, lr_decay_factor=0.1)
    fit(run, Stage(name="fit", domains=[0]))
    assert [lrs[k] for k in range(0, 20, 4)] == pytest.approx([0.05, 0.05, 0.05, 0.005, 0.005])


def test_a_stage_own_decay_patience_overrides_the_runs(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    # the run says decay after every miss; the stage says after every second one (as in the test above)
    run = fake_run(tmp_path, scripted([0.3, 0.1, 0.1, 0.1, 0.1]), lr_schedule="plateau", epochs=5, patience=9,
                   lr_decay_patience=1, lr_decay_factor=0.1)
    fit(run, Stage(name="fit", domains=[0], lr_decay_patience=2))
    assert [lrs[k] for k in range(0, 20, 4)] == pytest.approx([0.05, 0.05, 0.05, 0.005, 0.005])


def test_a_stage_own_patience_overrides_the_runs(tmp_path):
    run = fake_run(tmp_path, scripted([0.3, 0.1, 0.1, 0.1, 0.1, 0.1]), epochs=6, patience=2)
    _, result = fit(run, Stage(name="fit", domains=[0], patience=4))
    assert (result.best_epoch, result.epochs_run) == (1, 5)


def test_a_warmup_longer_than_an_epoch_ends_with_the_first_epoch(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    # 4 steps an epoch, warmup_steps 10: the warm-up is cut to the first epoch's 4 steps, so epoch 2 runs at
    # the full lr and the first validation already counts: best at 1, patience 2 stops at epoch 3.
    run = fake_run(tmp_path, scripted([0.3, 0.1, 0.1, 0.1, 0.1]), lr_schedule="plateau", warmup_steps=10,
                   epochs=5, patience=2)
    _, result = fit(run, Stage(name="fit", domains=[0]))
    assert (result.epochs_run, result.best_epoch) == (3, 1)
    assert lrs[:4] == pytest.approx([0.0, 0.0125, 0.025, 0.0375])  # over 4 steps, not 10
    assert lrs[4:8] == pytest.approx([0.05] * 4)  # epoch 2 at the full lr (epoch 1 set the best: no decay)
    assert lrs[8:12] == pytest.approx([0.025] * 4)  # epoch 2 missed: halved


def test_a_one_epoch_stage_reaches_its_lr_under_a_longer_warmup(tmp_path, monkeypatch):
    lrs = record_lrs(monkeypatch)
    # a one-epoch fine-tuning stage (a LoRA stage of 4 batches) under a 200-step warm-up: it ramps up to its
    # own lr over its 4 steps, not to 4/200 of it
    fit(fake_run(tmp_path, lr_schedule="plateau", warmup_steps=200), Stage(name="fit", domains=[0], epochs=1, lr=0.1,
                                                                           validate=False))
    assert lrs == pytest.approx([0.0, 0.025, 0.05, 0.075])


def test_resume_keeps_the_decayed_plateau_lr(tmp_path, monkeypatch):
    values = [0.2, 0.1, 0.1, 0.3, 0.1]
    settings = dict(lr_schedule="plateau", epochs=5, patience=9)
    whole, _ = fit(fake_run(tmp_path / "whole", scripted(values), **settings), Stage(name="fit", domains=[0]))

    kill_after_checkpoint(monkeypatch, epoch=3)
    with pytest.raises(KeyboardInterrupt):
        fit(fake_run(tmp_path / "cut", scripted(values), **settings), Stage(name="fit", domains=[0]))
    monkeypatch.undo()
    lrs = record_lrs(monkeypatch)
    resumed, result = fit(fake_run(tmp_path / "cut", scripted(values[3:]), **settings), Stage(name="fit", domains=[0]))
    assert result.resumed_from_epoch == 3 and result.best_epoch == 4
    assert lrs[:4] == pytest.approx([0.0125] * 4)  # two misses (epochs 2, 3) before the kill: 0.05 / 4
    for key, value in whole.weights().items():
        assert torch.equal(resumed.weights()[key], value), key


# --------------------------------------------------------------------------- epoch-0 scoring


def distance_from(start: dict[str, torch.Tensor]):
    """A validation metric that any training makes worse: minus the distance to the starting weights."""
    return lambda model: -sum(float((model.state_dict()[k] - v).abs().sum()) for k, v in start.items())


def test_score_start_keeps_the_starting_model_when_no_epoch_beats_it(tmp_path):
    start = Linear().weights()
    run = fake_run(tmp_path, metric=distance_from(start), epochs=3)
    model, result = fit(run, Stage(name="tune", domains=[0], score_start=True))
    assert result.best_epoch == 0 and result.best_value == 0.0 and result.epochs_run == 3
    for key, value in start.items():
        assert torch.equal(model.state_dict()[key], value), key  # the starting weights are restored
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    assert result.history[0] == {"epoch": 0, "ndcg@10": 0.0}  # validated, no training loss
    assert all(h["ndcg@10"] < 0 for h in result.history[1:])  # it did train, and got worse
    valid = [r for r in run.logged if r["split"] == "valid"]
    assert sorted(r["step"] for r in valid) == [0, 1, 2, 3]
    assert [(r["step"], r["name"]) for r in run.logged if r["split"] == "train"] == [(1, "loss"), (2, "loss"), (3, "loss")]
    assert torch.equal(torch.load(tmp_path / "tune.pt")["layer.weight"], start["layer.weight"])  # the best checkpoint


def test_without_score_start_the_stage_replaces_the_starting_model(tmp_path):
    start = Linear().weights()
    run = fake_run(tmp_path, metric=distance_from(start), epochs=3)
    model, result = fit(run, Stage(name="tune", domains=[0]))
    assert result.best_epoch == 1 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert not torch.equal(model.state_dict()["layer.weight"], start["layer.weight"])
    assert sorted(r["step"] for r in run.logged if r["split"] == "valid") == [1, 2, 3]
    losses = [r["value"] for r in run.logged if r["split"] == "train"]
    assert losses == pytest.approx([h["loss"] for h in result.history])  # each epoch's training loss, logged


def test_score_start_picks_a_later_epoch_that_beats_it_and_patience_counts_after_it(tmp_path):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(32, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    fit_quality = lambda model: -float(((model.layer(x).squeeze(-1) - y) ** 2).mean().detach())  # noqa: E731
    run = fake_run(tmp_path, metric=fit_quality, epochs=3)
    _, result = fit(run, Stage(name="tune", domains=[0], score_start=True))
    assert result.best_epoch == 3 and result.best_value > result.history[0]["ndcg@10"]

    start = Linear().weights()
    run = fake_run(tmp_path / "p", metric=distance_from(start), epochs=5, patience=2)
    model, result = fit(run, Stage(name="tune", domains=[0], score_start=True))
    assert result.best_epoch == 0 and result.epochs_run == 2  # two epochs without gain after epoch 0
    assert torch.equal(model.state_dict()["layer.weight"], start["layer.weight"])


def test_a_stage_whose_best_epoch_is_its_cap_is_capped_unless_it_is_intermediate(tmp_path):
    rising = [0.1, 0.2, 0.3]  # the best epoch is the last, at the 3-epoch cap
    _, result = fit(fake_run(tmp_path / "a", scripted(rising), epochs=3), Stage(name="fit", domains=[0]))
    assert (result.best_epoch, result.epoch_cap, result.capped, result.intermediate) == (3, 3, True, False)
    # a round that a later stage continues: its length is the schedule's, not a budget
    _, result = fit(fake_run(tmp_path / "b", scripted(rising), epochs=3),
                    Stage(name="round:1", domains=[0], intermediate=True))
    assert (result.best_epoch, result.capped, result.intermediate) == (3, False, True)
    _, result = fit(fake_run(tmp_path / "c", scripted([0.1, 0.3, 0.2]), epochs=3), Stage(name="fit", domains=[0]))
    assert (result.best_epoch, result.capped) == (2, False)  # early-stopped or not, the best came before the cap


def test_score_start_is_skipped_by_a_stage_that_does_not_validate(tmp_path):
    run = fake_run(tmp_path, metric=lambda m: pytest.fail("validated"))
    _, result = fit(run, Stage(name="tune", domains=[0], score_start=True, validate=False))
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.best_epoch == 3


@pytest.mark.parametrize("kill", ["after-checkpoint", "before-logging"])
def test_epoch_0_is_neither_redone_nor_logged_twice_after_a_resume(tmp_path, monkeypatch, kill):
    start = Linear().weights()
    reference = fake_run(tmp_path / "ref", metric=distance_from(start))
    whole, expected = fit(reference, Stage(name="tune", domains=[0], score_start=True))

    run = fake_run(tmp_path / "cut", metric=distance_from(start))
    if kill == "after-checkpoint":  # killed right after epoch 0's checkpoint and registry rows
        kill_after_checkpoint(monkeypatch, epoch=1)
    else:  # killed between epoch 0's checkpoint and its registry rows

        def die(rows):
            raise KeyboardInterrupt("killed")

        run.log_metrics = die
    with pytest.raises(KeyboardInterrupt):
        fit(run, Stage(name="tune", domains=[0], score_start=True))
    monkeypatch.undo()
    before = list(run.logged)
    assert run.evaluated == ([0.0] if kill == "before-logging" else [0.0, run.evaluated[1]])

    again = fake_run(tmp_path / "cut", metric=distance_from(start))
    model, result = fit(again, Stage(name="tune", domains=[0], score_start=True))
    assert 0.0 not in again.evaluated  # the starting model is not validated again
    steps = sorted((r["split"], r["step"]) for r in before + again.logged)
    # every epoch's rows exactly once: validation from epoch 0 (score_start), training loss from epoch 1
    assert steps == [("train", 1), ("train", 2), ("train", 3), ("valid", 0), ("valid", 1), ("valid", 2), ("valid", 3)]
    assert result.history == expected.history and result.best_epoch == 0
    assert result.resumed_from_epoch == (0 if kill == "before-logging" else 1)
    for key, value in whole.weights().items():
        assert torch.equal(model.state_dict()[key], value)


def test_a_start_validation_given_is_epoch_0_without_validating_again(tmp_path):
    start = Linear().weights()
    run = fake_run(tmp_path, metric=distance_from(start), epochs=2)
    given = EvalReport("valid", metrics={"A": {"ndcg@10": 0.5}, "average": {"ndcg@10": 0.5}},
                       counts={"A": 7, "average": 7})
    model, result = fit(run, Stage(name="tune", domains=[0], score_start=True, start_validation=given))
    assert len(run.evaluated) == 2 and 0.0 not in run.evaluated  # epochs 1 and 2 only: epoch 0 was given
    assert result.history[0] == {"epoch": 0, "ndcg@10": 0.5} and result.best_epoch == 0
    assert sorted((r["domain"], r["step"]) for r in run.logged if r["split"] == "valid" and r["step"] == 0) == [
        ("A", 0), ("average", 0)]  # epoch 0's rows reach the registry as if validated
    assert torch.equal(model.state_dict()["layer.weight"], start["layer.weight"])  # the starting model is kept
    assert torch.equal(torch.load(tmp_path / "tune.pt")["layer.weight"], start["layer.weight"])
    assert result.best_validation == {"domains": [0], "metrics": given.metrics, "counts": given.counts}


def test_a_stage_result_carries_its_best_epochs_validation_through_its_resume_file(tmp_path):
    run = fake_run(tmp_path, scripted([0.1, 0.3, 0.2]), epochs=3)
    _, result = fit(run, Stage(name="fit", domains=[0]))
    assert result.best_epoch == 2 and result.best_validation["metrics"]["average"] == {"ndcg@10": 0.3}
    again = fake_run(tmp_path, metric=lambda m: pytest.fail("trained again"), epochs=3)
    _, restored = fit(again, Stage(name="fit", domains=[0]))  # the same stage, finished: read back
    assert restored.best_validation == result.best_validation
    _, unvalidated = fit(fake_run(tmp_path / "n"), Stage(name="fit", domains=[0], validate=False))
    assert unvalidated.best_validation is None


def test_fine_tuning_stages_score_their_start():
    from mtrec.builtins.lora import UnifiedThenLoRA, UnifiedThenLoRAParams

    strategy = UnifiedThenLoRA(UnifiedThenLoRAParams())
    stage = strategy._domain_stage(None, "lora:A", 0)
    assert stage.score_start  # lora:D and finetune:D
    assert stage.patience is None and stage.lr_decay_patience is None  # the run's training section decides
    tuned = UnifiedThenLoRA(UnifiedThenLoRAParams(mode="full", lora_patience=8, lora_lr_decay_patience=2))
    stage = tuned._domain_stage(None, "finetune:A", 0)
    assert (stage.patience, stage.lr_decay_patience) == (8, 2)
    assert not Stage("unified", [0, 1]).score_start  # the default


# --------------------------------------------------------------------------- length buckets


def test_bucketed_batches_by_hand(monkeypatch):
    monkeypatch.setattr(batching, "WINDOW_BATCHES", 2)  # windows of 4 examples
    model = nn.Module()
    model.example_lengths = lambda tensors: torch.tensor([5, 1, 4, 1, 9, 2, 7, 3, 6, 8])
    tensors = {"x": torch.zeros(10, 1)}
    order = torch.tensor([4, 0, 3, 1, 9, 2, 8, 6, 5, 7])
    got = epoch_batches(model, tensors, order, 2, torch.Generator().manual_seed(0))
    # windows [4 0 3 1] [9 2 8 6] [5 7], each stable-sorted by length (3 before 1: both length 1)
    expected = [[3, 1], [0, 4], [2, 8], [6, 9], [5, 7]]
    assert sorted(b.tolist() for b in got) == sorted(expected)
    assert len(got) == math.ceil(10 / 2) and sorted(torch.cat(got).tolist()) == list(range(10))
    again = epoch_batches(model, tensors, order, 2, torch.Generator().manual_seed(0))
    assert [b.tolist() for b in again] == [b.tolist() for b in got]  # deterministic
    others = [[b.tolist() for b in epoch_batches(model, tensors, order, 2, torch.Generator().manual_seed(s))]
              for s in range(1, 6)]
    assert any(o != [b.tolist() for b in got] for o in others)  # the batches' order is shuffled

    # 3 per batch, windows of 6: [4 0 3 1 9 2] sorted -> 3 1 2 0 9 4; [8 6 5 7] sorted -> 5 7 8 6 (a partial batch)
    got = epoch_batches(model, tensors, order, 3, torch.Generator().manual_seed(0))
    assert sorted(b.tolist() for b in got) == sorted([[3, 1, 2], [0, 9, 4], [5, 7, 8], [6]])
    assert [len(b) for b in epoch_batches(model, tensors, order, 3, torch.Generator(), bucket=False)] == [3, 3, 3, 1]


def test_without_example_lengths_batches_are_plain_slices():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(2))
    plain = [order[s : s + 5] for s in range(0, 23, 5)]
    for model, bucket in ((nn.Linear(2, 2), True), (WithLengths(), False)):
        got = epoch_batches(model, {"i": torch.arange(23)}, order, 5, torch.Generator().manual_seed(0), bucket=bucket)
        assert [b.tolist() for b in got] == [b.tolist() for b in plain]


def test_every_rank_gets_the_same_number_of_bucketed_batches():
    model = WithLengths()
    tensors = {"i": torch.arange(203)}
    counts = set()
    for rank in range(3):
        share = torch.as_tensor(list(DistributedSampler(range(203), num_replicas=3, rank=rank, seed=1)))
        batches = epoch_batches(model, tensors, share, 8, epoch_generator(3, 1, rank))
        counts.add(len(batches))
        assert sorted(torch.cat(batches).tolist()) == sorted(share.tolist())
    assert counts == {math.ceil(math.ceil(203 / 3) / 8)}


def test_the_trainer_buckets_by_length_and_replays_the_same_batches(tmp_path):
    lengths = WithLengths().example_lengths({"i": torch.arange(N)})

    def ranges(model):
        """Per batch, (shortest, longest) example."""
        return [(int(lengths[b].min()), int(lengths[b].max())) for b in model.batches]

    bucketed, _ = fit(fake_run(tmp_path / "a", epochs=2), model=WithLengths())
    assert len(bucketed.batches) == 2 * 4
    for epoch in (bucketed.batches[:4], bucketed.batches[4:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(N))
        spans = sorted((int(lengths[b].min()), int(lengths[b].max())) for b in epoch)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one window: batches don't overlap in length
    assert ranges(bucketed)[:4] != sorted(ranges(bucketed)[:4])  # short and long batches interleave

    again, _ = fit(fake_run(tmp_path / "b", epochs=2), model=WithLengths())
    assert all(torch.equal(a, b) for a, b in zip(again.batches, bucketed.batches))

    plain, _ = fit(fake_run(tmp_path / "c", epochs=2, length_buckets=False), model=WithLengths())
    unbucketed, _ = fit(fake_run(tmp_path / "d", epochs=2))
    assert all(torch.equal(a, b) for a, b in zip(plain.batches, unbucketed.batches))  # as without lengths
    assert max(hi - lo for lo, hi in ranges(plain)) > max(hi - lo for lo, hi in ranges(bucketed))


# --------------------------------------------------------------------------- checkpoint state


def test_resume_checkpoint_state_is_versioned(tmp_path, monkeypatch):
    """The resume checkpoint carries its format version; one of another version is refused, not misread."""
    kill_after_checkpoint(monkeypatch, epoch=1)
    with pytest.raises(KeyboardInterrupt):
        fit(fake_run(tmp_path, scripted([0.1, 0.2])), Stage(name="fit", domains=[0]))
    monkeypatch.undo()
    last_path = step_paths(tmp_path, stage_key(1, "fit"))[1]
    last = load_checkpoint(last_path)
    assert last["state_version"] == trainer.StageState.VERSION and last["epoch"] == 1 and last["best_epoch"] == 1
    torch.save({**last, "state_version": trainer.StageState.VERSION + 1}, last_path)
    with pytest.raises(UserError, match="format 2; this mtrec reads format 1"):
        fit(fake_run(tmp_path, scripted([0.3])), Stage(name="fit", domains=[0]))


def test_the_epoch_line_splits_a_validated_epoch_into_training_and_validation():
    state = trainer.StageState(best_value=0.0130, best_epoch=2)
    validated = trainer.epoch_line("unified", 3, 8, {"loss": 2.13449, "ndcg@10": 0.0123}, "ndcg@10", state, 81.4, 52.2)
    assert validated == "stage unified: epoch 3/8  loss 2.1345  val ndcg@10 0.0123 (best 0.0130 @2)  81 s (training 52 s)"
    # an epoch without validation is all training: no split to show
    assert trainer.epoch_line("unified", 4, 8, {"loss": 2.0}, "ndcg@10", state, 50.0, 50.0).endswith("loss 2.0000  50 s")
    # epoch 0 (the starting model) trains nothing
    assert trainer.epoch_line("lora:A", 0, 8, {"ndcg@10": 0.02}, "ndcg@10", state, 9.0).endswith("@2)  9 s")
