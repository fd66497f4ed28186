"""Train and test RecBole 1.2.1's SASRec once; write a JSON summary.

Runs inside the RecBole virtual environment (not mtrec's), started by ``benchmarks/recbole_sasrec.py``.
It follows ``recbole.quick_start.run_recbole`` step by step, but without importing
``recbole.quick_start`` (that module imports ``ray``, which the benchmark does not install) and
without the FLOPs count (not part of training).  Per-epoch times are parsed from RecBole's own
log lines (``epoch N training [time: X s, ...]`` / ``epoch N evaluating [time: X s, ...]``).

Usage (normally called by the benchmark script)::

    python run_sasrec.py --config CONFIG.json --out RESULT.json
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRAIN_LINE = re.compile(r"epoch (\d+) training \[time: ([0-9.]+)s")
EVAL_LINE = re.compile(r"epoch (\d+) evaluating \[time: ([0-9.]+)s, valid_score: ([0-9.eE+-]+|nan)\]")


class LineCollector(logging.Handler):
    """Keeps every log message RecBole emits, colour codes removed."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(ANSI.sub("", record.getMessage()))
        except Exception:  # never let bookkeeping break a run
            pass


def parse_log(lines: list[str]) -> dict:
    """Per-epoch training/validation seconds, validation scores and the best (restored) epoch.

    Epochs are reported 1-based (RecBole logs them from 0) to match mtrec.  The best epoch is the
    last one whose evaluation was followed by RecBole's "Saving current" line, i.e. the checkpoint
    that ``trainer.evaluate(load_best_model=True)`` restores.
    """
    train_s: list[float] = []
    eval_s: list[float] = []
    valid: list[float] = []
    best_epoch = None
    last_eval_epoch = None
    for line in lines:
        for sub in line.splitlines():
            m = TRAIN_LINE.search(sub)
            if m:
                train_s.append(float(m.group(2)))
                continue
            m = EVAL_LINE.search(sub)
            if m:
                last_eval_epoch = int(m.group(1)) + 1
                eval_s.append(float(m.group(2)))
                valid.append(float(m.group(3)))
                continue
            if "Saving current" in sub and last_eval_epoch is not None:
                best_epoch = last_eval_epoch
    return {
        "train_seconds": train_s,
        "valid_seconds": eval_s,
        "valid_scores": valid,
        "epochs_run": len(train_s),
        "best_epoch": best_epoch,
        "seconds_per_epoch": sum(train_s) / len(train_s) if train_s else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="JSON file of RecBole config keys")
    ap.add_argument("--out", required=True, help="where to write the JSON summary")
    args = ap.parse_args()

    started = time.perf_counter()
    with open(args.config, encoding="utf-8") as fh:
        config_dict = json.load(fh)

    import torch
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    config = Config(model=config_dict["model"], dataset=config_dict["dataset"], config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = logging.getLogger()
    collector = LineCollector()
    logger.addHandler(collector)
    logger.info(sys.argv)
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    fit_started = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=True, show_progress=config["show_progress"]
    )
    fit_seconds = time.perf_counter() - fit_started
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=config["show_progress"])
    logger.info(f"best valid : {best_valid_result}")
    logger.info(f"test result: {test_result}")

    summary = parse_log(collector.lines)
    summary.update(
        {
            "recbole_version": recbole.__version__,
            "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": str(config["device"]),
            "n_users": int(dataset.user_num - 1),
            "n_items": int(dataset.item_num - 1),
            "n_interactions": int(dataset.inter_num),
            "n_train_examples": len(train_data._dataset),
            "best_valid_score": float(best_valid_score),
            "best_valid_result": {k: float(v) for k, v in (best_valid_result or {}).items()},
            "test": {k: float(v) for k, v in test_result.items()},
            "fit_seconds": fit_seconds,
            "seconds": time.perf_counter() - started,
        }
    )
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
