#!/usr/bin/env python
"""What GMC's paper-scale training costs on this machine, measured rather than guessed.

``gmc-paper`` / ``tiger-paper`` train the T5 of GMC §5.1.4 (the ``seq2seq`` defaults: 4+4 layers,
d_model 128, ~4.6M parameters) for 200 epochs at batch 1024.  This script builds that encoder with
the platform's own ``Seq2Seq`` class, times full optimisation steps (forward, backward, AdamW) at the
paper's batch on histories of the full length (``data.max_len`` 20 items of 5 identifier tokens:
4 RQ-VAE levels plus the collision level), counts the unified stage's training examples on the
multi-domain benchmark of ``benchmarks/generative.py`` (one example per training target), and
writes the implied time per epoch and for the paper's 200 epochs to the ``paper-scale-cost``
section of docs/benchmarks.md.  On a GPU (``--device cuda``) the step runs under bf16 autocast as
the trainer does.

    python benchmarks/paper_scale_cost.py                  # CPU, 1 thread, ~5 min
    python benchmarks/paper_scale_cost.py --device cuda
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import torch

from benchkit import BENCHMARKS_MD, WORK_ROOT, LoadSampler, log, machine_info, write_section

SECTION = "paper-scale-cost"
PAPER_EPOCHS = 200
CODE_LENGTH = 5  # 4 levels + the level that resolves collisions
CODEBOOK = 256


def training_examples(spec: Path) -> dict[str, int]:
    """Examples per domain of the unified stage: one per training target of each single-domain sequence."""
    from mtrec.data.load import load_dataset
    from mtrec.data.spec import load_spec_file
    from mtrec.data.views import train_sequences
    from mtrec.plugins import get_plugins

    dataset = load_dataset(load_spec_file(spec), get_plugins().formats, progress=False)
    return {name: sum(max(len(seq) - 1, 0) for seq in train_sequences(dataset, [d], "single"))
            for d, name in enumerate(dataset.domains)}


def step_seconds(device: torch.device, batch: int, steps: int, max_len: int, domains: int) -> tuple[float, int]:
    from mtrec.builtins.seq2seq import Seq2Seq, Seq2SeqParams
    from mtrec.training.stage import combine_by_count

    torch.manual_seed(0)
    items = 20_000
    item_tokens = torch.randint(0, CODEBOOK, (items + 1, CODE_LENGTH)) + torch.arange(CODE_LENGTH) * CODEBOOK
    model = Seq2Seq(Seq2SeqParams(), item_tokens, torch.randint(0, domains, (items + 1,)),
                    CODE_LENGTH * CODEBOOK, [f"d{i}" for i in range(domains)], max_len).to(device)
    model.train()
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, fused=device.type == "cuda")
    batch_tensors = {"history": torch.randint(1, items + 1, (batch, max_len), device=device),
                     "target": torch.randint(1, items + 1, (batch,), device=device)}
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels; not counted
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = combine_by_count(model.loss(batch_tensors))  # gmc's unified stage
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
        log(f"step {i}: {time.perf_counter() - start:.1f} s{' (warm-up)' if not i else ''}")
    return sorted(times)[len(times) // 2], parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--microlens-users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--work", type=Path, default=WORK_ROOT / "generative")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from generative import build_data

    args.work.mkdir(parents=True, exist_ok=True)
    examples = training_examples(build_data(args.work, args.microlens_users, args.seed))
    total = sum(examples.values())
    log(f"unified-stage examples: {total} ({examples})")
    device = torch.device(args.device)
    started = dt.datetime.now()
    with LoadSampler() as load:
        seconds, parameters = step_seconds(device, args.batch, args.steps, 20, len(examples))
    steps_per_epoch = -(-total // args.batch)
    epoch_h = steps_per_epoch * seconds / 3600
    machine = machine_info()
    where = (torch.cuda.get_device_name(0) if device.type == "cuda"
             else f"{machine['cpu']}, {machine['cores']} cores, {args.threads} torch thread(s)")
    body = "\n".join([
        "## What GMC's paper scale costs on this machine",
        "",
        f"- **Machine:** {where}; torch {machine['torch']}. **When:** {started:%Y-%m-%d %H:%M}; 1-minute load "
        f"mean {load.summary()['mean_1min']:.1f} on {machine['cores']} cores.",
        "- **Command:** `python benchmarks/paper_scale_cost.py" + (f" --device {args.device}" if args.device != "cpu" else "")
        + (f" --threads {args.threads}" if args.threads != 1 else "") + "`",
        f"- **Model:** the `seq2seq` defaults that `gmc-paper` / `tiger-paper` train (GMC §5.1.4): T5, 4+4 layers, "
        f"d_model 128, {parameters / 1e6:.2f}M parameters with a {CODE_LENGTH} x {CODEBOOK} identifier vocabulary; "
        f"histories of 20 items x {CODE_LENGTH} tokens; AdamW"
        + (", bf16 autocast" if device.type == "cuda" else ", fp32") + ".",
        f"- **Data:** the unified stage of `benchmarks/generative.py` (Scientific, Arts, Office, Microlens "
        f"{args.microlens_users} users): {total:,} training examples "
        f"({', '.join(f'{k} {v:,}' for k, v in examples.items())}).",
        "",
        "| batch | seconds / step (median of "
        f"{args.steps}) | steps / epoch | hours / epoch | hours for {PAPER_EPOCHS} epochs |",
        "|---:|---:|---:|---:|---:|",
        f"| {args.batch} | {seconds:.2f} | {steps_per_epoch} | {epoch_h:.2f} | {epoch_h * PAPER_EPOCHS:,.0f} |",
        "",
        "The unified stage alone, before the per-domain LoRA stages and the RQ-VAE; early stopping (patience "
        "10) may end it sooner. This is why the CPU rows of the GMC/TIGER sections use a much smaller T5 and a "
        "few epochs, and why their numbers are not the paper's comparison.",
    ])
    write_section(args.out, SECTION, body)
    log(f"{seconds:.2f} s/step, {steps_per_epoch} steps/epoch: {epoch_h * PAPER_EPOCHS:,.0f} h for "
        f"{PAPER_EPOCHS} epochs; wrote the {SECTION} section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
