"""--log wandb and --log mlflow: what a run logs is in each tool, read back with the tool's own readers;
what would fail is refused before the first step. Offline only: W&B's offline mode, an MLflow file store.

W&B's offline run is one transaction log (``RUN_DIR/wandb/offline-run-*/run-ID.wandb``, what
``wandb sync`` uploads): LevelDB's log framing of ``wandb.proto.wandb_internal_pb2.Record`` messages.
wandb 0.31 ships no Python reader for it, so :func:`wandb_records` reads the framing (stable since
the format began) and wandb's own protobuf classes parse the records.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from splitattn.cli import main as cli_main
from splitattn.dense.shapes import make_shapes_dataset
from splitattn.errors import SplitattnError
from splitattn.training.trackers import IDS_FILE, check_log, open_trackers, parse_log

SMALL_RUN = ["--model", "resnest14d", "--batch-size", "16", "--image-size", "16", "--seed", "1", "--no-progress",
             "--epochs", "2", "max_steps_per_epoch=4", "warmup_epochs=0.5"]
BLOCK = 32768  # LevelDB log blocks; a record's chunks never cross one
FULL, LAST = 1, 4


def offline_tools(patch: pytest.MonkeyPatch, root: Path) -> str:
    """W&B offline and MLflow on a file store under ``root``, nothing written outside it; the store's URI."""
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        patch.setenv(name, str(root / "wandb-home"))
    patch.setenv("WANDB_MODE", "offline")
    patch.setenv("WANDB_SILENT", "true")
    uri = (root / "mlruns").as_uri()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a file store unless told
    return uri


def wandb_records(run_dir: Path, wait_s: float = 30.0) -> list:
    """Every record of the run's one offline W&B run, in order, once the file ends with the run's exit
    record: W&B's service process writes the file and may still be flushing it when ``finish()`` has
    returned (a CI run read it without its history records), so the file is reread until it is whole."""
    deadline = time.monotonic() + wait_s
    while True:
        records = _wandb_file_records(run_dir)
        if (records and records[-1].WhichOneof("record_type") == "exit") or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _wandb_file_records(run_dir: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending, records = 7, b"", []
    while position + 7 <= len(data):
        left = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position:position + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):  # the padding at a block's end
            position += left
            continue
        if position + 7 + length > len(data):  # a record still being written
            break
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(records: list) -> list[dict]:
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def mlflow_run(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("splitattn").experiment_id])
    return client, run


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, digits):
    """One two-epoch digits run (2 x 4 steps) logged to W&B (offline) and MLflow (a file store) at once."""
    root = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as patch:
        uri = offline_tools(patch, root)
        output = root / "run"
        assert cli_main(["train", "--data", str(digits), "--output", str(output), "--log", "wandb,mlflow",
                         *SMALL_RUN]) == 0
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return output, uri, metrics


def test_wandb_offline_run_holds_steps_epochs_config_pictures_and_best_checkpoint(tracked):
    output, _, metrics = tracked
    records = wandb_records(output)
    history = wandb_history(records)
    steps = [h for h in history if "train/loss" in h]
    assert [h["_step"] for h in steps] == list(range(1, 9)), "one loss per optimiser step, 2 epochs x 4 steps"
    assert all(h["train/loss"] > 0 and h["train/lr"] > 0 for h in steps)
    epochs = [h for h in history if "epoch/val_top1" in h]
    assert [h["epoch"] for h in epochs] == [1, 2] and [h["_step"] for h in epochs] == [4, 8]
    assert [h["epoch/val_top1"] for h in epochs] == pytest.approx([m["val_top1"] for m in metrics])
    assert {"curves", "predictions"} <= {key.split("/")[0] for h in history for key in h}
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["model"] == "resnest14d" and config["epochs"] == 2 and config["attn"] == {}
    assert run.display_name == "run" and run.run_id == json.loads((output / IDS_FILE).read_text())["wandb"]
    (artifact,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert artifact.type == "model" and [entry.path for entry in artifact.manifest.contents] == ["best.pth"]


def test_mlflow_run_holds_metrics_params_and_artefacts(tracked):
    output, uri, metrics = tracked
    client, run = mlflow_run(uri)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.info.run_id == json.loads((output / IDS_FILE).read_text())["mlflow"]
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in losses) == list(range(1, 9))
    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 8
    top1 = sorted(client.get_metric_history(run.info.run_id, "epoch/val_top1"), key=lambda m: m.step)
    assert [m.step for m in top1] == [1, 2]
    assert [m.value for m in top1] == pytest.approx([m["val_top1"] for m in metrics])
    params = run.data.params
    assert params["model"] == "resnest14d" and params["epochs"] == "2" and params["max_steps_per_epoch"] == "4"
    artefacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"curves.png", "best.pth", "predictions"} <= artefacts
    local = Path(client.download_artifacts(run.info.run_id, "best.pth", str(output / "fetched")))
    assert local.read_bytes() == (output / "best.pth").read_bytes()


def test_a_segmentation_run_logs_to_both_tools(tmp_path, monkeypatch, one_thread_seg):
    """train-seg (as train-det: the dense recipe's one code path): steps, the final mIoU, the model."""
    uri = offline_tools(monkeypatch, tmp_path)
    output = tmp_path / "seg"
    assert cli_main(["train-seg", *one_thread_seg, "--output", str(output), "--log", "mlflow,wandb"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["config.yaml", "last.pth", "metrics.json", IDS_FILE,
                                                        "wandb"], "MLflow writes into its store, not the run"
    mIoU = json.loads((output / "metrics.json").read_text())["metrics"]["mIoU"]
    client, run = mlflow_run(uri)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss_out")) == [1, 2]
    (logged,) = client.get_metric_history(run.info.run_id, "val/mIoU")
    assert logged.step == 2 and logged.value == pytest.approx(mIoU)
    assert run.data.params["backbone"] == "resnest14d"
    assert {"last.pth", "predictions"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    records = wandb_records(output)
    history = wandb_history(records)
    assert [h["_step"] for h in history if "train/loss" in h] == [1, 2], \
        f"history {history}; records {[r.WhichOneof('record_type') for r in records]}"
    assert [h["val/mIoU"] for h in history if "val/mIoU" in h] == [pytest.approx(mIoU)]


@pytest.fixture
def one_thread_seg(tmp_path):
    """A 2-step train-seg run's arguments on the smallest shapes set, one intra-op thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    shapes = make_shapes_dataset(tmp_path / "shapes", 4, image_size=32, min_size=8, max_size=14, seed=3)
    yield ["--images", str(shapes.images), "--masks", str(shapes.masks), "--val-images", str(shapes.images),
           "--val-masks", str(shapes.masks), "--backbone", "resnest14d",
           "--output-stride", "16", "--image-size", "32", "--batch-size", "2", "--steps", "2", "--warmup-steps", "1",
           "--device", "cpu", "--no-progress", "--log-every", "0"]
    torch.set_num_threads(threads)


def test_a_resumed_run_continues_the_same_tool_runs(tmp_path, monkeypatch):
    uri = offline_tools(monkeypatch, tmp_path)
    kinds = check_log("wandb,mlflow")
    first = open_trackers(kinds, tmp_path / "run", {"model": "resnest14d"})
    ids = json.loads((tmp_path / "run" / IDS_FILE).read_text())
    first.step({"train/loss": 2.0}, 1)
    first.close("stopped")
    again = open_trackers(kinds, tmp_path / "run", {"model": "resnest14d", "resume": True}, start_step=1)
    assert [t.run_id for t in again.trackers] == [ids["wandb"], ids["mlflow"]]
    again.step({"train/loss": 1.0}, 2)
    again.close()
    client, run = mlflow_run(uri)  # one run, with both steps
    assert run.info.run_id == ids["mlflow"] and run.info.status == "FINISHED"
    assert sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")) == [
        (1, 2.0), (2, 1.0)]
    fresh = open_trackers(kinds, tmp_path / "run", {"model": "resnest14d"})  # a new run starts new tool runs
    assert ids["mlflow"] not in [t.run_id for t in fresh.trackers]
    fresh.close()


@pytest.mark.parametrize("tool, package", [("wandb", "wandb"), ("mlflow", "mlflow"), ("tensorboard,mlflow", "mlflow")])
def test_a_missing_package_is_refused_before_training(tool, package, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    assert cli_main(["train", "--output", str(tmp_path / "run"), "--log", tool, *SMALL_RUN]) == 2
    error = capsys.readouterr().err
    assert f"--log {package} needs the {package} package" in error and f"pip install 'splitattn[{package}]'" in error
    assert not (tmp_path / "run").exists()


def test_missing_package_message_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(SplitattnError, match=r"pip install 'splitattn\[mlflow\]' \(or pip install mlflow-skinny\)"):
        check_log("mlflow")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_mlflow_server_is_refused_within_seconds(tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    started = time.perf_counter()
    assert cli_main(["train-seg", "--images", str(tmp_path), "--masks", str(tmp_path), "--steps", "1",
                     "--output", str(tmp_path / "seg"), "--log", "mlflow"]) == 2
    assert time.perf_counter() - started < 15, "MLflow's retries were not turned off for the check"
    error = capsys.readouterr().err
    assert f"the MLflow tracking store {url} cannot be used" in error and "MLFLOW_TRACKING_URI" in error
    assert not (tmp_path / "seg").exists()


def test_wandb_online_without_a_login_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import wandb

    wandb.teardown()  # the settings an earlier offline run of this process left in wandb's singleton
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")  # should the check let it through, fail fast, not in minutes
    assert cli_main(["train", "--output", str(tmp_path / "run"), "--log", "wandb", *SMALL_RUN]) == 2
    error = capsys.readouterr().err
    assert "not logged in to Weights & Biases" in error and "WANDB_MODE=offline" in error
    assert not (tmp_path / "run").exists()


def test_log_names_are_checked_with_a_suggestion(tmp_path, capsys):
    assert [kind.name for kind in parse_log("tensorboard, wandb,jsonl,wandb")] == ["tensorboard", "wandb"]
    assert parse_log("jsonl") == () and parse_log(["mlflow"])[0].name == "mlflow"
    assert cli_main(["train-det", "--annotations", str(tmp_path / "a.json"), "--images", str(tmp_path),
                     "--log", "tensorbord,mlfow"]) == 2
    assert "Did you mean 'tensorboard'?" in capsys.readouterr().err
