"""Datasets bundled with mtrec (the ``mtrec.bundled`` package).

Each sub-folder with a ``dataset.yaml`` is a dataset that ``--dataset <folder name>`` loads;
``examples/tools/make_amazon_mini.py`` (not part of the package) rebuilds ``amazon-mini`` from the
shared evaluation datasets.
"""
