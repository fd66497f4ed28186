#!/usr/bin/env python
"""Rebuild the text embeddings shipped with the bundled datasets.

For every bundled dataset (or those named), embed the item texts with the default sentence
encoder and write ``<dataset>/embeddings/<texts digest>-<model>.f16.npy`` (float16, one row per
item in global id order, without the padding row).  mtrec.text uses such a file only when the
digest of the dataset's item texts matches, so editing a dataset and forgetting this script costs
time (a fresh encoding), never correctness.  Old files of a dataset are removed.

    python examples/tools/make_embeddings.py              # every bundled dataset (~10 min per 18k texts on 2 CPU cores)
    python examples/tools/make_embeddings.py amazon-mini
"""

from __future__ import annotations

import argparse

import numpy as np

from mtrec.data.load import bundled_datasets, load_dataset, resolve_spec
from mtrec.plugins import get_plugins
from mtrec.text import DEFAULT_TEXT_MODEL, encode_item_texts, model_slug, shipped_embeddings_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", help="bundled dataset names (default: all)")
    parser.add_argument("--model", default=DEFAULT_TEXT_MODEL)
    args = parser.parse_args()
    formats = get_plugins().formats
    for name, folder in sorted(bundled_datasets().items()):
        if args.datasets and name not in args.datasets:
            continue
        dataset = load_dataset(resolve_spec(name, formats), formats)
        vectors = encode_item_texts(dataset, args.model, progress=True)[1:]
        target = folder.parent / "embeddings"  # folder is the dataset.yaml
        target.mkdir(exist_ok=True)
        for old in target.glob(f"*-{model_slug(args.model)}.f16.npy"):
            old.unlink()
        path = target / shipped_embeddings_name(dataset, args.model)
        np.save(path, vectors.astype(np.float16), allow_pickle=False)
        print(f"{name}: {vectors.shape[0]} items x {vectors.shape[1]} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
