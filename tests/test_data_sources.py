"""Training and evaluation data beyond folders: WebDataset shards, Hugging Face datasets, torchrun splits.

Every data set here is written by the test (tiny coloured squares), so nothing touches the network;
the Hugging Face tests run with ``datasets`` offline and its cache in the test's directory.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from splitattn.cli import main as cli_main
from splitattn.data import DataError, open_eval_source, open_source
from splitattn.data.partition import epoch_order, split_epoch
from splitattn.data.shard_info import INFO_FILE, write_info
from splitattn.data.skips import SKIPPED_FILE
from splitattn.training import TrainConfig, Trainer, train
from splitattn.training.runtime import Runtime

CLASSES = ("blue", "green", "red")  # sorted, as a folder's classes are
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
UNEVEN = (37, 12, 50, 3, 25)  # five shards of different lengths: 127 samples


def _square(name: str, rng: random.Random) -> Image.Image:
    r, g, b = (max(0, min(255, c + rng.randint(-25, 25))) for c in COLOURS[name])
    return Image.new("RGB", (12, 12), (r, g, b))


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``train/`` (3 x 40) and ``val/`` (3 x 8) class folders of noisy coloured squares."""
    root = tmp_path_factory.mktemp("squares")
    rng = random.Random(0)
    for split, count in (("train", 40), ("val", 8)):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                _square(name, rng).save(root / split / name / f"{name}{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    assert cli_main(["write-shards", str(folder), str(out), "--per-shard", "50"]) == 0
    return out


def _write_uneven_shards(out: Path, lengths=UNEVEN, broken: dict[int, str] | None = None) -> list[str]:
    """Shards ``train-00000i.tar`` of ``lengths`` samples (keys ``s<shard>-<i>``) and a one-shard val
    split; ``broken`` maps a global sample index to how it is spoilt ("image" or "label")."""
    import webdataset as wds

    rng, broken, index, keys = random.Random(1), broken or {}, 0, []
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for shard, length in enumerate(lengths):
        files.append(f"train-{shard:06d}.tar")
        with wds.TarWriter(str(out / files[-1]), encoder=False) as sink:
            for i in range(length):
                label = index % len(CLASSES)
                sample = {"__key__": f"s{shard}-{i:03d}", "png": _png(_square(CLASSES[label], rng)),
                          "cls": str(label).encode()}
                if broken.get(index) == "image":
                    sample["png"] = b"\x89PNG but not really"
                if broken.get(index) == "label":
                    del sample["cls"]
                sink.write(sample)
                keys.append(f"{out / files[-1]}:{sample['__key__']}")
                index += 1
    with wds.TarWriter(str(out / "val-000000.tar"), encoder=False) as sink:
        for i in range(12):
            sink.write({"__key__": f"v{i:03d}", "png": _png(_square(CLASSES[i % 3], rng)), "cls": str(i % 3).encode()})
    write_info(out / INFO_FILE, {"train": (files, list(lengths)), "validation": (["val-000000.tar"], [12])},
               list(CLASSES))
    return keys


def _config(tmp_path: Path, data: str, **options) -> TrainConfig:
    values = dict(data=data, model="resnest14d", image_size=32, batch_size=16, epochs=1, workers=0, progress=False,
                  output=str(tmp_path / "run"), warmup_epochs=0.0, seed=3)
    return TrainConfig(**{**values, **options})


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _torchrun(*args: str) -> list[str]:
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", port, *args]


@pytest.fixture
def hf_offline(tmp_path, monkeypatch) -> Path:
    """``datasets`` offline, with its cache in the test's directory."""
    import datasets
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        if hasattr(datasets.config, name):
            monkeypatch.setattr(datasets.config, name, True)
    return tmp_path / "hf-cache"


# ----------------------------------------------------------------------------------- planning
@pytest.mark.parametrize(("lengths", "world", "workers"),
                         [(UNEVEN, 2, 2), (UNEVEN, 3, 1), ((5,), 4, 3), ((7, 1), 2, 1)])
def test_an_epoch_split_reads_every_sample_once_and_evens_out_the_ranks(lengths, world, workers):
    order = epoch_order(len(lengths), seed=0, epoch=2, shuffle=True)
    for pad in (True, False):
        split = split_epoch(lengths, order, world, workers, pad)
        read = [(p.part, i) for rank in split.pieces for worker in rank for p in worker for i in range(p.start, p.stop)]
        everything = {(part, i) for part, n in enumerate(lengths) for i in range(n)}
        assert set(read) == everything
        assert len(read) == sum(lengths) + split.padded  # each once, but for the stated padding
        per_rank = [sum(split.count(r, k) for k in range(workers)) for r in range(world)]
        if pad:
            assert len(set(per_rank)) == 1 and split.padded < world
        else:
            assert split.padded == 0 and max(per_rank) - min(per_rank) <= 1


def test_the_epoch_order_comes_from_seed_and_epoch_alone():
    assert epoch_order(50, seed=1, epoch=3, shuffle=True) == epoch_order(50, seed=1, epoch=3, shuffle=True)
    assert epoch_order(50, seed=1, epoch=3, shuffle=True) != epoch_order(50, seed=1, epoch=4, shuffle=True)
    assert epoch_order(5, seed=1, epoch=3, shuffle=False) == [0, 1, 2, 3, 4]


def test_a_stream_repeats_its_epoch_exactly_and_reshuffles_the_next(tmp_path):
    _write_uneven_shards(tmp_path)
    source = open_source(str(tmp_path / "train-{000000..000004}.tar"))
    stream = source.dataset(None, source.class_names, training=True, seed=5, keyed=True)
    stream.shuffle_buffer = 16
    keys = []
    for epoch in (0, 0, 1):
        stream.set_epoch(epoch)
        keys.append([key for _, _, key in stream])
    assert keys[0] == keys[1], "a resumed epoch replays the same order"
    assert keys[0] != keys[2] and sorted(keys[0]) == sorted(keys[2])
    assert len(keys[0]) == sum(UNEVEN)


def test_a_run_on_shards_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """For a stream, --resume replays the epoch from its start and skips the steps already done."""
    _write_uneven_shards(tmp_path / "shards")
    options = dict(image_size=16, deterministic=True, shuffle_buffer=20)
    runtime = Runtime(torch.device("cpu"))
    Trainer(_config(tmp_path / "whole", str(tmp_path / "shards"), **options), runtime).fit()
    after_step = Trainer.after_step

    def stop_after_three(self):
        after_step(self)
        self.stop_signals.requested = self.scheduler.last_epoch == 3  # as a SIGTERM would after step 3

    monkeypatch.setattr(Trainer, "after_step", stop_after_three)
    assert Trainer(_config(tmp_path / "cut", str(tmp_path / "shards"), **options), runtime).fit()["stopped"]
    monkeypatch.setattr(Trainer, "after_step", after_step)
    Trainer(_config(tmp_path / "cut", str(tmp_path / "shards"), resume=True, **options), runtime).fit()
    whole = torch.load(tmp_path / "whole" / "run" / "last.pth", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "cut" / "run" / "last.pth", weights_only=False)
    assert resumed["epoch"] == 1 and resumed["step_in_epoch"] == 0
    assert all(torch.equal(whole[name], resumed["model"][name]) for name in whole)


# ---------------------------------------------------------------------------- end to end
def test_shards_written_from_a_folder_train_and_evaluate(folder, shards, tmp_path, capsys):
    assert sorted(p.name for p in shards.iterdir()) == [INFO_FILE, "train-000000.tar", "train-000001.tar",
                                                          "train-000002.tar", "val-000000.tar"]
    info = json.loads((shards / INFO_FILE).read_text())
    assert info["splits"]["train"]["shard_lengths"] == [50, 50, 20]
    assert info["class_names"] == list(CLASSES)
    record = train(_config(tmp_path, str(shards / "train-{000000..000002}.tar"), max_steps_per_epoch=3))
    assert record["val_images"] == 24 and 0 <= record["val_top1"] <= 100  # the info file's val split, each once
    log = capsys.readouterr().out
    assert "120 samples in 3 shards" in log and "24 samples in 1 shard (" in log
    source = open_eval_source(str(shards), class_names=["red", "green", "blue"])  # the model's own order
    samples = list(source.samples())
    assert len(samples) == 24
    by_key = {s.key: s for s in samples}
    assert len(by_key) == 24 and all(k.split(":")[0].endswith(".tar") for k in by_key)
    for sample in samples[:6]:  # labels follow the given class order, matched by name
        red, green, blue = sample.image.getpixel((0, 0))
        assert ["red", "green", "blue"][sample.label] == max((red, "red"), (green, "green"), (blue, "blue"))[1]


@pytest.mark.parametrize("kind", ["saved", "imagefolder", "streamed"])
def test_a_hugging_face_dataset_trains_and_evaluates(kind, folder, tmp_path, hf_offline, capsys):
    import datasets

    options = {"data_dir": str(folder), "cache_dir": str(hf_offline)}
    if kind == "saved":
        datasets.load_dataset("imagefolder", **options).save_to_disk(str(tmp_path / "saved"))
        config = _config(tmp_path, f"hf:{tmp_path / 'saved'}", max_steps_per_epoch=2)
    else:
        config = _config(tmp_path, "hf:imagefolder", hf_options=options, hf_streaming=kind == "streamed",
                         max_steps_per_epoch=2, train_num_samples=120 if kind == "streamed" else None)
    record = train(config)
    assert record["val_images"] == 24 and 0 <= record["val_top1"] <= 100
    log = capsys.readouterr().out
    assert "120 samples of hf:" in log and "[validation]" in log
    assert ("(streamed)" in log) == (kind == "streamed")


# ----------------------------------------------------------------------------------- torchrun
RANK_KEYS = """
import json, os, sys
from torch.utils.data import DataLoader
from splitattn.data import open_source
from splitattn.data import collate_skipping

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
source = open_source(sys.argv[1])
stream = source.dataset(None, source.class_names, training=True, seed=0, keyed=True)
stream.configure(world, rank, workers=2)
stream.set_epoch(1)
keys = [key for _, _, key in DataLoader(stream, batch_size=None, num_workers=2)]
stream.configure(world, rank, workers=2)
steps = stream.steps(batch_size=8)
plan = stream.plan(batch_size=8)
out = {"keys": keys, "steps": steps, "plan": plan, "padded": stream.split().padded}
open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w").write(json.dumps(out))
"""


def test_under_torchrun_every_sample_is_read_once_across_ranks_and_workers(tmp_path):
    all_keys = _write_uneven_shards(tmp_path / "shards")
    (tmp_path / "rank_keys.py").write_text(RANK_KEYS)
    command = _torchrun(str(tmp_path / "rank_keys.py"), str(tmp_path / "shards" / "train-{000000..000004}.tar"),
                        str(tmp_path))
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    seen = ranks[0]["keys"] + ranks[1]["keys"]
    assert set(seen) == set(all_keys)
    assert len(ranks[0]["keys"]) == len(ranks[1]["keys"]) == 64  # ceil(127 / 2)
    assert len(seen) - len(set(seen)) == ranks[0]["padded"] == 1  # the one stated as padding
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8  # 2 workers x 32 samples: 4 batches of 8 each
    assert "1 of them read twice" in ranks[0]["plan"]


def test_splitattn_train_on_uneven_shards_under_torchrun_finishes(tmp_path):
    _write_uneven_shards(tmp_path / "shards")
    run = tmp_path / "run"
    command = _torchrun("-m", "splitattn", "train", "--data", str(tmp_path / "shards" / "train-{000000..000004}.tar"),
                        "--output", str(run), "--model", "resnest14d", "--image-size", "16", "--batch-size", "8",
                        "--epochs", "1", "--no-progress", "warmup_epochs=0")  # every step: none cut off
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "127 samples in 5 shards over 2 process(es) x 1 loader worker(s): 64 a process, 1 of them read twice" \
        in result.stdout
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["val_images"] == 12  # the validation shard, each sample once over both ranks


# ------------------------------------------------------------------------------ broken samples
def test_a_corrupt_shard_sample_is_skipped_counted_and_named(tmp_path, capsys):
    lengths = (16, 16, 16)  # 48 = 3 full batches: every sample is read
    keys = _write_uneven_shards(tmp_path / "shards", lengths, broken={5: "image", 20: "label"})
    record = train(_config(tmp_path, str(tmp_path / "shards")))
    assert record["skipped_images"] == 2
    lines = (tmp_path / "run" / SKIPPED_FILE).read_text().splitlines()
    assert len(lines) == 2
    named = {line.split("\t")[1]: line.split("\t")[2] for line in lines}
    assert set(named) == {keys[5] + ".png", keys[20]}
    assert "no label" in named[keys[20]]
    log = capsys.readouterr().out
    assert "skipped 2 unreadable sample(s)" in log and keys[20] in log


def test_an_undecodable_file_in_a_folder_is_named_in_the_run_directory(folder, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(folder, root)
    (root / "train" / "red" / "broken.png").write_bytes(b"not an image")
    (root / "train" / "blue" / "empty.png").touch()
    record = train(_config(tmp_path, str(root), batch_size=11))  # 121 images: 11 full batches, all read
    assert record["skipped_images"] == 1
    lines = (tmp_path / "run" / SKIPPED_FILE).read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == sorted(
        [str(root / "train" / "red" / "broken.png"), str(root / "train" / "blue" / "empty.png")])
    assert all(line.startswith("train\t") for line in lines)
    log = capsys.readouterr().out
    assert "empty.png (zero-byte file)" in log and "broken.png" in log


# ---------------------------------------------------------------------------------- errors
def test_sources_that_cannot_be_opened_fail_before_the_first_step(folder, shards, tmp_path, hf_offline, monkeypatch):
    runtime = Runtime(torch.device("cpu"))
    with pytest.raises(DataError, match=r"shard file\(s\) \['[^,]*train-000003.tar'\] of .* do not exist"):
        Trainer(_config(tmp_path, str(shards / "train-{000000..000003}.tar")), runtime)
    with pytest.raises(DataError, match=r"has no split 'vall'.*did you mean 'val'"):
        Trainer(_config(tmp_path, str(shards), val_split="vall"), runtime)
    import datasets

    datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(hf_offline)).save_to_disk(
        str(tmp_path / "saved"))
    saved = f"hf:{tmp_path / 'saved'}"
    with pytest.raises(DataError, match=r"has no split 'valid'.*\['train', 'validation'\].*did you mean 'validation'"):
        Trainer(_config(tmp_path, saved, val_split="valid"), runtime)
    with pytest.raises(DataError, match=r"has no column 'lable' .*did you mean 'label'"):
        Trainer(_config(tmp_path, saved, label_column="lable"), runtime)
    with pytest.raises(DataError, match="cannot open the Hugging Face dataset hf:nobody/no-such-dataset"):
        Trainer(_config(tmp_path, "hf:nobody/no-such-dataset"), runtime)
    nameless = tmp_path / "nameless"
    _write_uneven_shards(nameless)
    info = json.loads((nameless / INFO_FILE).read_text())
    del info["class_names"]
    (nameless / INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(DataError, match=r"number of classes is unknown; add \"class_names\" .* or give num_classes"):
        Trainer(_config(tmp_path, str(nameless)), runtime)
    assert Trainer(_config(tmp_path, str(nameless), num_classes=3), runtime).class_names == ["0", "1", "2"]
    monkeypatch.setitem(sys.modules, "webdataset", None)  # as if the extra were not installed
    with pytest.raises(DataError, match=r"pip install 'splitattn\[webdataset\]'"):
        Trainer(_config(tmp_path, str(shards)), runtime)
    assert not (tmp_path / "run").exists()
