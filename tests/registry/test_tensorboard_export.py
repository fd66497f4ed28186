"""`mtrec runs export ID... --format tensorboard --out DIR`, read back with TensorBoard's EventAccumulator."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from mtrec.registry import open_registry
from mtrec.registry.cli import runs

pytest.importorskip("tensorboard", reason="the TensorBoard export needs the 'tensorboard' package (the 'ui' extra)")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

CONFIG = {"recipe": "sasrec", "name": None, "seed": 7,
          "training": {"epochs": 3, "lr": 0.001, "select_metric": "ndcg@10", "threads": None},
          "encoder": {"name": "sasrec", "params": {"hidden": 16, "layers": [1, 2]}}}


def _start(reg, name, **extra):
    return reg.start_run(name=name, recipe="sasrec", config={**CONFIG, **extra}, config_hash="h", seed=7,
                         device="cpu", dataset_name="tiny", dataset_spec={}, dataset_fingerprint="f",
                         components=[{"kind": "encoder", "name": "sasrec"}])


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """Two runs as the engine records them (two stages of validation per epoch, test, identifier stats),
    the first with its run folder (training loss in metrics.json); and one failed run."""
    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    reg = open_registry(url)
    ids = []
    for r in range(2):
        rid = _start(reg, f"run{r}")
        rows = []
        for stage, epochs in (("single:Arts", 3), ("single:Office", 2)):
            for epoch in range(1, epochs + 1):
                for domain in ("Arts", "average"):
                    rows += [{"stage": stage, "split": "valid", "domain": domain, "name": "ndcg", "k": 10,
                              "value": 0.01 * epoch + 0.001 * r, "step": epoch},
                             {"stage": stage, "split": "valid", "domain": domain, "name": "mrr", "k": None,
                              "value": 0.02 * epoch, "step": epoch}]
        rows += [{"stage": "final", "split": "test", "domain": d, "name": "ndcg", "k": 10, "value": v}
                 for d, v in (("Arts", 0.03), ("Office", 0.05), ("average", 0.04 + r / 100))]
        rows += [{"stage": "identifier", "split": "fit", "domain": "all", "name": "usage", "k": 1, "value": 0.75},
                 {"stage": "identifier", "split": "fit", "domain": "Arts", "name": "collision_rate", "k": None,
                  "value": 0.125}]
        reg.log_metrics(rid, rows)
        if r == 0:
            folder = tmp_path / "home" / "runs" / rid
            (folder / "models").mkdir(parents=True)
            (folder / "models" / "w.bin").write_bytes(b"w")
            (folder / "metrics.json").write_text(json.dumps({"run_id": rid, "stages": [
                {"name": "single:Arts", "history": [{"epoch": e, "loss": 9.0 - e} for e in (1, 2, 3)]},
                {"name": "single:Office", "history": [{"epoch": e, "loss": 8.5 - e / 2} for e in (1, 2)]},
            ]}))
            reg.log_artifact(rid, "models", folder / "models")
        reg.set_status(rid, "finished")
        ids.append(rid)
    failed = _start(reg, "broken")
    reg.set_status(failed, "failed", error="boom")
    ids.append(failed)
    yield url, reg, ids
    reg.close()


def _export(url, *args):
    return CliRunner().invoke(runs, ["export", *args, "--registry", url], catch_exceptions=False)


def _scalars(folder):
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    ea.Reload()
    return ea, {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


def test_scalars_match_the_registry_epochs(recorded, tmp_path):
    url, reg, (a, b, failed) = recorded
    out = tmp_path / "tb"
    result = _export(url, a[:8] if a[:8] != b[:8] else a, b, failed, "--format", "tensorboard", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([a, b, failed])
    assert f"tensorboard --logdir {out}" in result.stderr

    for rid in (a, b):
        ea, scalars = _scalars(out / rid)
        # every registry row with an epoch comes back under <stage>/<split>/<domain>/<metric>, at that epoch
        expected: dict[str, list[tuple[int, float]]] = {}
        for m in reg.metrics([rid], split="valid"):
            label = "ndcg@10" if m["name"] == "ndcg" else m["name"]
            expected.setdefault(f"{m['stage']}/valid/{m['domain']}/{label}", []).append((m["step"], m["value"]))
        assert len(expected) == 2 * 2 * 2
        for tag, points in expected.items():
            got = scalars[tag]
            assert [s for s, _ in got] == [s for s, _ in points], tag
            assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag
        assert [s for s, _ in scalars["single:Arts/valid/average/ndcg@10"]] == [1, 2, 3]
        assert [s for s, _ in scalars["single:Office/valid/average/ndcg@10"]] == [1, 2]
        assert scalars["test/average/ndcg@10"] == [(0, pytest.approx(0.04 + (rid == b) / 100))]
        assert scalars["test/Office/ndcg@10"][0][1] == pytest.approx(0.05)
        assert scalars["identifier/usage/L1"][0][1] == pytest.approx(0.75)
        assert scalars["identifier/collision_rate/Arts"][0][1] == pytest.approx(0.125)

        # hparams: the flat config, with the test averages as metrics
        content = ea.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hp = start.session_start_info.hparams
        assert hp["training.epochs"].number_value == 3
        assert hp["training.lr"].number_value == pytest.approx(0.001)
        assert hp["encoder.params.hidden"].number_value == 16
        assert hp["encoder.params.layers"].string_value == "[1, 2]"
        assert hp["training.threads"].string_value == "null"
        assert hp["run.id"].string_value == rid
        experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
        assert "test/average/ndcg@10" in {m.name.tag for m in experiment.experiment.metric_infos}

    # training loss: from the run folder of the first run (the engine keeps it there), per epoch
    _, scalars = _scalars(out / a)
    assert scalars["single:Arts/train/loss"] == [(1, 8.0), (2, 7.0), (3, 6.0)]
    assert scalars["single:Office/train/loss"] == [(1, 8.0), (2, 7.5)]
    _, scalars = _scalars(out / b)
    assert not any(t.endswith("/train/loss") for t in scalars)
    _, scalars = _scalars(out / failed)
    assert scalars == {}


def test_registry_loss_rows_win_and_nan_is_left_out(recorded, tmp_path):
    url, reg, (a, _, _) = recorded
    reg.log_metrics(a, [{"stage": "single:Arts", "split": "train", "domain": "all", "name": "loss", "k": None,
                         "value": v, "step": e} for e, v in ((1, 5.0), (2, math.nan), (3, 4.0))])
    out = tmp_path / "tb"
    assert _export(url, a, "--format", "tensorboard", "--out", str(out)).exit_code == 0
    _, scalars = _scalars(out / a)
    assert scalars["single:Arts/train/loss"] == [(1, 5.0), (3, 4.0)]
    assert scalars["single:Office/train/loss"] == [(1, 8.0), (2, 7.5)]  # from the folder


def test_bad_input_is_one_message_and_exit_2(recorded, tmp_path):
    url, _, (a, b, _) = recorded
    out = tmp_path / "tb"
    result = _export(url, a, "no-such-run", "--format", "tensorboard", "--out", str(out))
    assert result.exit_code == 2 and "no-such-run" in result.stderr
    assert not out.exists()  # nothing written
    assert _export(url, a, "--format", "tensorboard").exit_code == 2  # --out is needed
    assert _export(url, a, b, "--format", "json").exit_code == 2  # json/csv: one run
    assert _export(url, a, "--format", "tensorboard", "--out", str(out)).exit_code == 0
    again = _export(url, b, a, "--format", "tensorboard", "--out", str(out))
    assert again.exit_code == 2 and "not an empty folder" in again.stderr
    assert not (out / b).exists()  # refused before writing anything
    # json/csv of one run still work as before
    single = _export(url, a, "--format", "json")
    assert single.exit_code == 0 and json.loads(single.stdout)["id"] == a
