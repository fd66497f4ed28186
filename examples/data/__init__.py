"""Datasets bundled with mtrec (the ``mtrec.bundled`` package).

Each sub-folder with a ``dataset.yaml`` is a dataset that ``--dataset <folder name>`` loads;
``make_amazon_mini.py`` rebuilds ``amazon-mini`` from the shared evaluation datasets.
"""
