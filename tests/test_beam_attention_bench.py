"""``benchmarks/beam_attention.py``: its stand-in identifier is a valid one (unique ids per domain, a
trie per domain), so both attentions search the same catalogue; and the section reports the
measured rows.  Nothing is timed here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from mtrec.builtins.trie_beam import build_trie

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
beam_attention = importlib.import_module("beam_attention")


def test_stand_in_codes_are_unique_and_build_every_domains_trie():
    rng = np.random.default_rng(0)
    item_domain = np.concatenate([[-1], rng.integers(0, 2, 2_000)])
    codes = beam_attention.StandInCodes(item_domain.size - 1, size=4)  # 256 four-code prefixes for 2,000 items
    tokens = codes.item_tokens()[1:]
    assert torch.unique(tokens[:, :4], dim=0).shape[0] < tokens.shape[0]  # the 5th level has work to do
    assert torch.unique(tokens, dim=0).shape[0] == tokens.shape[0]
    assert int(tokens.max()) < codes.vocab_size
    run = SimpleNamespace(dataset=SimpleNamespace(domain_items=[np.flatnonzero(item_domain == d) for d in (0, 1)]))
    for d in (0, 1):
        items = run.dataset.domain_items[d]
        trie = build_trie(codes.domain_tokens(run, d), torch.as_tensor(items))
        assert trie.n_items == items.size


def test_section_reports_each_size_with_its_speed_up_and_agreement():
    def timed(wall: float, cpu: float) -> dict:
        return {"wall_s": wall, "cpu_s": cpu, "metrics": {}}

    row = {"size": "papers' T5", "domains": ["A", "B"], "history_items": 6.7, "threads": 1, "users": 7800,
           "beam": 20, "parameters": 4_590_000, "batch_size": 512, "copy per beam": timed(150.0, 147.0),
           "grouped": timed(100.0, 98.0), "same_metrics": True, "same_beams": False, "max_score_difference": 3e-5}
    machine = {"cpu": "AMD EPYC", "cores": 2, "torch": "2.13.0+cpu"}
    text = beam_attention.section([row], machine, {"mean_1min": 2.0}, "2026-12-05 16:00 UTC", "the data",
                                  "python benchmarks/beam_attention.py")
    line = next(l for l in text.splitlines() if l.startswith("| papers' T5"))
    assert line == ("| papers' T5 | 4.59M | 1 | 52.0 | 78.0 | 53.1 → 79.6 | 1.5× | yes | no | 3.0e-05 |")
    assert "all 7,800 test users of the data, in A, B, 6.7 history items" in text
