"""Helpers of the id-matcher tests: a tiny two-domain dataset on disk, and the plugin manager."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mtrec.plugins import Plugins
from mtrec_id_matcher import plugin as plugin_module

WORDS = {
    "Crafts": ["wool yarn", "knitting needles", "acrylic paint", "paint brush", "canvas board", "sewing thread"],
    "Office": ["ballpoint pen", "paper notebook", "stapler", "desk lamp", "sticky notes", "printer paper"],
}
GARDEN = {"Garden": ["garden hose", "flower seeds", "watering can", "pruning shears", "plant pot", "lawn rake"]}


def load_plugins() -> Plugins:
    p = Plugins().load()
    if "id-matcher" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "id-matcher", "mtrec-id-matcher")
    return p


def write_tiny_dataset(root: Path, users: int = 40, per_kind: int = 4, seed: int = 0, garden: bool = False) -> Path:
    """Two lcrec domains (Crafts, Office; with ``garden`` a third) of ``6 * per_kind`` items each;
    users stick to a few kinds.

    Returns the spec file.  Item ``t`` of a kind is titled "<colour> <kind> <t>", so texts of one
    kind are similar, as are behaviours (a user's sequence draws from two kinds).
    """
    rng = np.random.default_rng(seed)
    colours = ["red", "blue", "green", "black", "white", "large"]
    sources = []
    for domain, kinds in {**WORDS, **(GARDEN if garden else {})}.items():
        folder = root / domain.lower()
        folder.mkdir(parents=True)
        items, by_kind = {}, []
        for k, kind in enumerate(kinds):
            ids = []
            for t in range(per_kind):
                idx = len(items)
                items[str(idx)] = {"title": f"{colours[t % len(colours)]} {kind} {t}", "brand": f"brand{k}",
                                   "categories": f"{domain},{kind}", "description": ""}
                ids.append(idx)
            by_kind.append(ids)
        inter = {}
        for u in range(users):
            pick = rng.choice(len(kinds), size=2, replace=False)
            pool = by_kind[pick[0]] + by_kind[pick[1]]
            inter[str(u)] = [int(i) for i in rng.choice(pool, size=int(rng.integers(5, 9)))]
        (folder / f"{domain}.item.json").write_text(json.dumps(items))
        (folder / f"{domain}.inter.json").write_text(json.dumps(inter))
        sources.append({"format": "lcrec", "path": str(folder), "domain": domain})
    spec = root / "tiny.yaml"
    lines = ["name: tiny-idp", "kcore: 0", "split: leave-one-out", "text_fields: [title, brand, categories]", "sources:"]
    for s in sources:
        lines += [f"  - format: {s['format']}", f"    path: {s['path']}", f"    domain: {s['domain']}"]
    spec.write_text("\n".join(lines) + "\n")
    return spec
