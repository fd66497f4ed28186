#!/usr/bin/env python
"""Validation-pass cost of trie-constrained beam search with and without a copy of the encoder
states per beam (``seq2seq``'s grouped cross-attention, :mod:`mtrec.builtins.beam_attention`).

For each T5 size (the ``gmc`` recipe's CPU default and the papers' T5 of the ``*-t5-paper-size``
benchmark rows), the script builds one seeded, untrained model on the bundled ``amazon-mini``
data, or with ``--data multidomain`` on the four-domain data of ``benchmarks/generative.py``
(built or reused in its default work folder; needs ``../shared/datasets``), with a stand-in identifier (gmc's layout: 4 levels of 256 random codes plus a level that
tells apart items sharing them; beam search does the same work whatever the weights and codes),
then runs the evaluator over every test user of every domain (beam 20, full ranking, as a run's
validation and test do) twice: with transformers' ``sdpa`` attention, whose cache copies the
cross-attention keys and values once per beam, and with mtrec's grouped attention.  It reports
users per second and per CPU-second, and whether the two give the same metrics.

    python benchmarks/beam_attention.py                     # bundled data
    python benchmarks/beam_attention.py --data multidomain  # what the generative rows validate on
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchkit import BENCHMARKS_MD, WORK_ROOT, LoadSampler, log, machine_info, write_section

SECTION = "beam-attention"
SIZES = {
    "the recipes' CPU T5 (2+2 layers, d_ff 512, 4 heads of 32)": [],
    "the papers' T5 (4+4 layers, d_ff 1024, 6 heads of 64)": [
        "encoder.params.d_ff=1024", "encoder.params.num_layers=4", "encoder.params.num_decoder_layers=4",
        "encoder.params.num_heads=6", "encoder.params.d_kv=64",
    ],
}


class StandInCodes:
    """gmc's identifier layout with seeded random codes: 4 levels of ``size`` (256), then a 5th level
    that numbers the items sharing their first four codes (so every id is unique, as the real one)."""

    def __init__(self, n_items: int, seed: int = 0, size: int = 256) -> None:
        g = np.random.default_rng(seed)
        n = n_items + 1  # row 0 is padding
        codes = g.integers(0, size, (n, 4)) + np.arange(4) * size
        _, group = np.unique(codes, axis=0, return_inverse=True)
        extra = np.zeros(n, dtype=np.int64)
        seen: dict[int, int] = {}
        for i, key in enumerate(group.ravel()):
            extra[i] = seen.get(int(key), 0)
            seen[int(key)] = extra[i] + 1
        self.tokens = np.concatenate([codes, (4 * size + extra)[:, None]], axis=1)
        self.tokens[0] = 0
        self.vocab_size = 4 * size + int(extra.max()) + 1
        self.version = 0

    def item_tokens(self) -> torch.Tensor:
        return torch.as_tensor(self.tokens)

    def domain_tokens(self, run, domain: int) -> torch.Tensor:
        return torch.as_tensor(self.tokens[np.asarray(run.dataset.domain_items[domain])])


def measure(label: str, overrides: list[str], threads: int, dataset_spec: str | None) -> dict:
    from mtrec.builtins.beam_attention import ATTENTION
    from mtrec.builtins.trie_beam import beam_search
    from mtrec.config import resolve
    from mtrec.engine import load_run_dataset
    from mtrec.plugins import Plugins
    from mtrec.run_context import RunContext

    torch.set_num_threads(threads)
    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "gmc", overrides=overrides,
                       extra={"dataset": dataset_spec} if dataset_spec else None)
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), WORK_ROOT / "beam-attention-run", progress=False)
    run.identifier = StandInCodes(dataset.n_items)
    torch.manual_seed(0)
    model = run.build_encoder().eval()
    models = {d: model for d in run.all_domains}
    test = run.examples("test")
    users = len(test["target"])
    row = {"size": label, "domains": list(dataset.domains), "threads": threads, "users": users,
           "history_items": float((test["history"] > 0).sum(1).mean()), "beam": run.decoder.params.beam_size,
           "parameters": sum(p.numel() for p in model.parameters()), "batch_size": resolved.config.evaluation.batch_size}
    first = run.examples("test", run.all_domains[:1])
    sample = {k: torch.as_tensor(v[:128]) for k, v in first.items()}  # the first batch's beams, compared below
    trie = run.decoder.trie(run.all_domains[0], torch.device("cpu"))
    beams = {}
    for name, impl in (("copy per beam", "sdpa"), ("grouped", ATTENTION)):
        model.t5.set_attn_implementation(impl)
        with torch.no_grad():
            beams[name] = beam_search(model, sample, trie, run.decoder.params.beam_size)
        run.evaluate(models, "valid", run.all_domains[:1])  # warm-up: tries, allocator
        wall, cpu = time.perf_counter(), time.process_time()
        report = run.evaluate(models, "test")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row[name] = {"wall_s": wall, "cpu_s": cpu, "metrics": report.metrics}
        log(f"{label}, {threads} thread(s), {name}: {users} users in {wall:.1f} s ({cpu:.1f} CPU-s)")
    row["same_metrics"] = row["copy per beam"]["metrics"] == row["grouped"]["metrics"]
    (items_a, scores_a), (items_b, scores_b) = beams.values()
    row["sample_users"] = int(items_a.shape[0])
    row["same_beams"] = bool(torch.equal(items_a, items_b))
    row["max_score_difference"] = float((scores_a - scores_b).abs().max())
    return row


def section(rows: list[dict], machine: dict, load: dict, when: str, data: str, command: str) -> str:
    lines = [
        "## Beam search without a copy per beam (grouped cross-attention)",
        "",
        f"- **Machine:** {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, CPU only. "
        f"**When:** {when}; 1-minute load mean {load['mean_1min']:.1f} on {machine['cores']} cores "
        "(other work shared the machine: compare the CPU-second columns, which it affects much less than wall time).",
        f"- **Command:** `{command}`",
        f"- **What runs:** the evaluator over all {rows[0]['users']:,} test users of {data}, in "
        f"{', '.join(rows[0]['domains'])}, {rows[0]['history_items']:.1f} history items a user on average "
        f"(at most `data.max_len`); trie-constrained beam search with beam {rows[0]['beam']}, "
        f"full ranking, {rows[0]['batch_size']} users a batch: what a run's validation and test do. "
        "One seeded, untrained model per T5 size, a stand-in identifier in gmc's layout (beam search does "
        "the same work whatever the weights and codes).",
        "- **copy per beam:** transformers' `sdpa` attention, whose cache copies each example's "
        "cross-attention keys and values once per beam when the search widens to 20 beams. "
        "**grouped:** mtrec's attention (`mtrec.builtins.beam_attention`), which keeps one copy per "
        "example and computes an example's beams as query positions of it.",
        "",
        "| T5 | parameters | threads | copy per beam: users/s | grouped: users/s | users per CPU-s, copy → grouped | speed-up (CPU) | same metrics | same 20 beams, first 128 users | largest beam-score difference |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        a, b = r["copy per beam"], r["grouped"]
        lines.append(
            f"| {r['size']} | {r['parameters'] / 1e6:.2f}M | {r['threads']} | {r['users'] / a['wall_s']:.1f} | "
            f"{r['users'] / b['wall_s']:.1f} | {r['users'] / a['cpu_s']:.1f} → {r['users'] / b['cpu_s']:.1f} | "
            f"{a['cpu_s'] / b['cpu_s']:.1f}× | {'yes' if r['same_metrics'] else 'no'} | "
            f"{'yes' if r['same_beams'] else 'no'} | {r['max_score_difference']:.1e} |"
        )
    lines += [
        "",
        "**same metrics**: every domain's Recall, NDCG and MRR at every k equal to the last digit between "
        "the two. The grouped attention sums the same products in another order, so beam scores (sums of "
        "five log-probabilities) can differ in the last bits: the last two columns compare the 20 beams "
        "of the first test batch's first 128 users. "
        "`tests/test_generative.py::test_beams_share_one_cross_attention_copy_per_example` checks the "
        "logits and the beams against the copying path. Training is unchanged: queries and keys have "
        "as many rows there, and the function is then transformers' own `sdpa`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads [1]")
    parser.add_argument("--data", choices=["bundled", "multidomain"], default="bundled",
                        help="the recipe's bundled amazon-mini data, or benchmarks/generative.py's four domains")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)
    spec, data = None, "the bundled `amazon-mini` data"
    if args.data == "multidomain":
        from generative import CACHE, build_data

        spec = str(build_data(CACHE, 3000, 2000, 2024))
        data = ("the multi-domain benchmark's data (`benchmarks/generative.py`: Scientific 3,000 users, "
                "ArtsOffice, Microlens 2,000 users, data seed 2024)")
    machine = machine_info()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with LoadSampler() as sampler:
        rows = [measure(label, overrides, t, spec) for label, overrides in SIZES.items() for t in args.threads]
    command = " ".join(["python benchmarks/beam_attention.py", *(sys.argv[1:] if argv is None else argv)])
    write_section(args.out, SECTION, section(rows, machine, sampler.summary(), when, data, command))
    log(f"wrote {args.out} (section {SECTION})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
