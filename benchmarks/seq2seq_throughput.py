#!/usr/bin/env python
"""Training throughput of the ``seq2seq`` encoder (examples/s), at equal model and data.

Builds the ``gmc`` recipe's CPU-default T5 on the bundled ``amazon-mini`` data with a stand-in
identifier (seeded random codes of the same shape as gmc's: 4 levels of 256 plus a disambiguation
level -- throughput does not depend on the code values) and times full AdamW steps (forward,
backward, optimiser) over every training example of one epoch order, through the same
``train_stage`` loop a run uses (validation off).  Each configuration is a ``--set``-style list of
overrides on top of the recipe; the script prints examples/s per configuration and, with
``--write``, records them in ``benchmarks/.work/seq2seq_throughput.json`` under ``--label``.

    python benchmarks/seq2seq_throughput.py --label before --config "" --steps 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchkit import BENCHMARKS_MD, WORK_ROOT, log, machine_info, write_section

RESULTS = WORK_ROOT / "seq2seq_throughput.json"


class RandomCodes:
    """A stand-in identifier: seeded random codes, gmc's layout (L=4 of N=256 + one extra level)."""

    def __init__(self, n_items: int, levels: int = 4, size: int = 256, extra: int = 8, seed: int = 0) -> None:
        g = np.random.default_rng(seed)
        codes = g.integers(0, size, (n_items + 1, levels)) + np.arange(levels) * size
        extra_tok = levels * size + g.integers(0, extra, (n_items + 1, 1))
        self.tokens = np.concatenate([codes, extra_tok], axis=1)
        self.tokens[0] = 0
        self.vocab_size = levels * size + extra

    def item_tokens(self) -> torch.Tensor:
        return torch.as_tensor(self.tokens)


def measure(overrides: list[str], steps: int, threads: int) -> dict:
    from mtrec.config import resolve
    from mtrec.engine import load_run_dataset
    from mtrec.plugins import Plugins
    from mtrec.run_context import RunContext

    torch.set_num_threads(threads)
    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "gmc", overrides=["training.max_train_examples=null", *overrides])
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), WORK_ROOT / "throughput-run", progress=False)
    run.identifier = RandomCodes(dataset.n_items)
    torch.manual_seed(0)
    model = run.build_encoder()
    model.train()
    cfg = resolved.config.training
    tensors = model.train_tensors(run, run.all_domains)
    n = next(iter(tensors.values())).shape[0]
    batch_size = cfg.batch_size
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, foreach=True)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    batches = _batches(model, tensors, order, batch_size, getattr(cfg, "length_buckets", False))
    done, seconds = 0, 0.0
    # a seeded sample of the epoch's batches: bucketed batches come in random length order
    picks = torch.randperm(len(batches), generator=torch.Generator().manual_seed(1))[: steps + 2].tolist()
    batches = [batches[i] for i in picks]
    for i, idx in enumerate(batches):
        batch = {k: v[idx] for k, v in tensors.items()}
        start = time.perf_counter()
        loss = combine(model.loss(batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:  # the first steps warm allocators up
            seconds += time.perf_counter() - start
            done += idx.numel()
    params = sum(p.numel() for p in model.parameters())
    return {"overrides": overrides, "examples_per_s": done / seconds, "steps": len(batches[2:steps + 2]),
            "batch_size": batch_size, "train_examples": n, "parameters": params, "threads": threads}


def combine(loss) -> torch.Tensor:
    from mtrec.training.stage import combine_by_count

    return combine_by_count(loss)


def _batches(model, tensors: dict, order: torch.Tensor, batch_size: int, bucket: bool) -> list[torch.Tensor]:
    """The trainer's batches for this epoch order (length-bucketed where the trainer buckets)."""
    try:
        from mtrec.training.batching import epoch_batches
    except ImportError:  # before length bucketing existed: plain consecutive slices
        return [order[s : s + batch_size] for s in range(0, order.numel(), batch_size)]
    return epoch_batches(model, tensors, order, batch_size, torch.Generator().manual_seed(0), bucket=bucket)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", required=True)
    ap.add_argument("--config", action="append", default=[],
                    help="space-separated overrides of one configuration (repeat for several; '' = the recipe)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for config in args.config or [""]:
        overrides = config.split()
        log(f"measuring {args.label}: {overrides or '(recipe defaults)'}")
        row = measure(overrides, args.steps, args.threads)
        row["machine"] = machine_info()
        row["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        log(f"  {row['examples_per_s']:.1f} examples/s over {row['steps']} steps of {row['batch_size']}")
        results.setdefault(args.label, []).append(row)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
        write_section(BENCHMARKS_MD, "seq2seq-throughput", report(results[args.label], args.label))


def report(rows: list[dict], label: str) -> str:
    base = rows[0]["examples_per_s"]
    m = rows[0]["machine"]
    lines = [
        "## seq2seq training throughput (CPU)",
        "",
        f"`python benchmarks/seq2seq_throughput.py` ({label}, {rows[0]['when']}): the `gmc` recipe's CPU T5 "
        f"({rows[0]['parameters']:,} parameters), batch {rows[0]['batch_size']}, full AdamW steps on "
        f"{rows[0]['steps']} seeded batches of one epoch of the bundled data ({rows[0]['train_examples']:,} "
        f"examples, stand-in codes of gmc's shape), {rows[0]['threads']} thread, {m['cpu']} "
        f"({m['cores']} cores), torch {m['torch']}. All rows ran one after another in one process "
        "launch each, at the same load. The first row is the computation before length buckets and "
        "`history: items` existed (flattened codes padded to the batch's longest history); the first rows share one model, a row that changes the model's size is a different model.",
        "",
        "| configuration (over the recipe) | examples/s | vs first row |",
        "|---|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| `{' '.join(row['overrides']) or '(recipe defaults)'}` | {row['examples_per_s']:.0f} | "
                     f"{row['examples_per_s'] / base:.1f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
