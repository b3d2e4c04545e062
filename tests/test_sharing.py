"""Trained models that travel: save_pretrained and the Hub (served from a prepared offline cache),
timm's Hub repositories, the model card, push-to-hub, and TensorBoard event files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from splitattn import create_model, save_pretrained
from splitattn.cli import main as cli_main
from splitattn.sharing import read_run
from splitattn.weights import CheckpointError, RepoError, export_state_dict, save_state_dict

from .hosts import hub_cache, put_in_hub_cache
from .reference import randomize_, reference_model

SMALL_RUN = ["--model", "resnest14d", "--batch-size", "16", "--image-size", "16", "--seed", "1", "--no-progress",
             "--epochs", "2", "max_steps_per_epoch=4", "warmup_epochs=0.5"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, digits) -> Path:
    """A finished two-epoch digits run, logged to TensorBoard too."""
    output = tmp_path_factory.mktemp("runs") / "digits"
    assert cli_main(["train", "--data", str(digits), "--output", str(output), "--log", "tensorboard", *SMALL_RUN]) == 0
    return output


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    with hub_cache(monkeypatch, tmp_path / "hf-cache") as cache:
        yield cache


def digit_batch(run: Path) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(3, 3, 16, 16)


def test_trained_model_round_trips_through_the_hub_with_identical_logits(run_dir, tmp_path, offline_hub):
    run = read_run(run_dir)
    folder = save_pretrained(run.trained.model, tmp_path / "repo", run=run)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "curves.png", "model.safetensors"]
    put_in_hub_cache(offline_hub, "alice/resnest14d-digits", folder)

    loaded = create_model("hf-hub:alice/resnest14d-digits").eval()
    x = digit_batch(run_dir)
    with torch.no_grad():
        assert torch.equal(loaded(x), run.trained.model(x))
    cfg = loaded.pretrained_cfg
    assert cfg["label_names"] == [str(d) for d in range(10)]
    assert cfg["input_size"] == (3, 16, 16) and cfg["crop_pct"] == 1.0
    assert cfg["top1"] is None and cfg["tag"] is None, "the ImageNet numbers do not describe these weights"
    assert cfg["loaded_from"] == "hf-hub:alice/resnest14d-digits"

    local = create_model(f"local-dir:{folder}").eval()
    with torch.no_grad():
        assert torch.equal(local(x), loaded(x))


def test_predict_reads_a_hub_model_like_its_checkpoint(run_dir, digits, tmp_path, offline_hub, capsys):
    run = read_run(run_dir)
    put_in_hub_cache(offline_hub, "alice/digits", save_pretrained(run.trained.model, tmp_path / "repo", run=run))
    image = next((digits / "val" / "7").iterdir())
    answers = []
    for checkpoint in (str(run.checkpoint), "hf-hub:alice/digits"):
        assert cli_main(["predict", str(image), "--checkpoint", checkpoint, "--top-k", "1", "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out)["predictions"][0])
    assert answers[0]["class"] == answers[1]["class"]
    assert answers[0]["probability"] == pytest.approx(answers[1]["probability"], rel=1e-5)


def test_a_timm_hub_repository_loads_into_our_model(tmp_path, offline_hub):
    from timm.models._hub import save_for_hf

    ours = randomize_(create_model("resnest14d")).eval()
    timm_model = reference_model("resnest14d").eval()
    timm_model.load_state_dict(export_state_dict(ours.state_dict(), "timm", "resnest14d"))
    timm_model.pretrained_cfg = {**timm_model.pretrained_cfg, "tag": "gluon_in1k"}
    folder = tmp_path / "timm-repo"
    save_for_hf(timm_model, folder, safe_serialization=True)  # timm's own writer: its config.json and layout
    put_in_hub_cache(offline_hub, "timm/resnest14d.gluon_in1k", folder)

    loaded = create_model("hf-hub:timm/resnest14d.gluon_in1k").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), ours(x))
        torch.testing.assert_close(loaded(x), timm_model(x), rtol=1e-5, atol=1e-5)
    assert loaded.pretrained_cfg["tag"] == "gluon_in1k" and loaded.pretrained_cfg["top1"] == pytest.approx(75.516)


def _repo(folder: Path, config: dict | None, weights: dict[str, torch.Tensor] | None) -> Path:
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if weights is not None:
        save_state_dict(weights, folder / "model.safetensors")
    return folder


def test_bad_repositories_each_get_their_own_message(tmp_path, offline_hub):
    # A repository lacking a file is served from a folder: an offline Hub cache cannot tell a file
    # that does not exist from one never downloaded (that case has its own message, below).
    config = {"architecture": "resnest14d", "num_classes": 1000, "library_name": "splitattn"}
    cases = [
        (_repo(tmp_path / "no-weights", config, None), RepoError,
         r"holds no weights: neither model.safetensors nor pytorch_model.bin"),
        (_repo(tmp_path / "vit", {"architecture": "vit_base_patch16_224"}, {"w": torch.zeros(1)}),
         ValueError, r"architecture 'vit_base_patch16_224', which splitattn does not build"),
        (_repo(tmp_path / "wrong-file", config, create_model("resnet18").state_dict()), CheckpointError,
         r"(?s)wrong-file: the checkpoint does not fit 'resnest14d'.*missing keys"),
        (_repo(tmp_path / "no-config", None, {"w": torch.zeros(1)}), RepoError,
         r"has no config.json, so the architecture it holds is unknown"),
    ]
    for folder, error, message in cases:
        with pytest.raises(error, match=message):
            create_model(f"local-dir:{folder}")
    put_in_hub_cache(offline_hub, "alice/wrong-file", tmp_path / "wrong-file")
    with pytest.raises(CheckpointError, match=r"hf-hub:alice/wrong-file: the checkpoint does not fit 'resnest14d'"):
        create_model("hf-hub:alice/wrong-file")
    with pytest.raises(RepoError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\) and config.json is not in the "
                                        r"Hugging Face cache"):
        create_model("hf-hub:alice/never-downloaded")
    with pytest.raises(RepoError, match=r"folder .*nowhere' does not exist"):
        create_model(f"local-dir:{tmp_path / 'nowhere'}")


def test_push_to_hub_writes_weights_config_and_a_card_that_tell_the_truth(run_dir, tmp_path, capsys):
    out = tmp_path / "to-upload"
    assert cli_main(["push-to-hub", str(run_dir), "alice/resnest14d-digits", "--no-upload", "--local-dir",
                     str(out)]) == 0
    assert f"wrote alice/resnest14d-digits: {out}" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    # timm has resnest14d, so the repository is in timm's format, ours under "splitattn"
    assert config["architecture"] == "resnest14d" and config["num_classes"] == 10
    assert config["label_names"] == [str(d) for d in range(10)] and "library_name" not in config
    assert config["pretrained_cfg"]["input_size"] == [3, 16, 16]
    assert config["splitattn"]["architecture"] == "resnest14d" and config["splitattn"]["layout"] == "timm"
    assert config["splitattn"]["training_config"]["max_steps_per_epoch"] == 4

    card = (out / "README.md").read_text()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(metrics, key=lambda r: r["val_top1"])
    assert card.startswith("---\nlibrary_name: timm\nlicense: apache-2.0\n")
    assert "tags: [image-classification, timm, splitattn, resnest]" in card
    assert "# resnest14d-digits" in card and "`resnest14d` (resnest)" in card
    params = sum(p.numel() for p in read_run(run_dir).trained.model.parameters())
    assert f"Parameters: {params / 1e6:.2f} M" in card
    assert f"| {best['epoch']} (best) | {best['val_top1']:.2f} |" in card
    data = config["splitattn"]["training_config"]["data"]
    assert f"trained on the image folder `{data}`" in card and "2 epochs, batch 16" in card
    assert "![Loss and accuracy per epoch](curves.png)" in card and (out / "curves.png").is_file()
    assert 'create_model("hf-hub:alice/resnest14d-digits")' in card
    assert 'timm.create_model("hf-hub:alice/resnest14d-digits", pretrained=True)' in card
    assert "## Intended use and limitations" in card


def test_push_to_hub_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert cli_main(["push-to-hub", str(tmp_path), "alice/x", "--no-upload", "--local-dir", str(tmp_path / "o")]) == 2
    assert "holds neither best.pth nor last.pth" in capsys.readouterr().err
    assert cli_main(["push-to-hub", str(tmp_path), "not-a-repo-id", "--no-upload"]) == 2
    assert "must be named ORG/NAME" in capsys.readouterr().err


def test_tensorboard_event_files_hold_the_run(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == list(range(1, 9)), "one loss per optimiser step, 2 epochs x 4 steps"
    assert all(e.value > 0 for e in events.Scalars("train/lr"))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    top1 = events.Scalars("epoch/val_top1")
    assert [e.step for e in top1] == [1, 2]
    assert [e.value for e in top1] == pytest.approx([r["val_top1"] for r in metrics])
    assert set(events.Tags()["images"]) == {"curves", "predictions"}
    assert len(events.Images("predictions")) == 2 and events.Images("predictions")[0].width > 100


def test_tensorboard_missing_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    assert cli_main(["train", "--output", str(tmp_path / "run"), "--log", "tensorboard", *SMALL_RUN]) == 2
    assert "--log tensorboard needs the tensorboard package" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_push_to_hub_creates_the_repository_and_uploads_the_folder_in_one_commit(run_dir, monkeypatch):
    # The Hub cannot be reached from the tests: huggingface_hub's client is replaced by a recorder at
    # its public API (create_repo, upload_folder), which checks what would be sent.
    import huggingface_hub

    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            config = json.loads((Path(folder_path) / "config.json").read_text())
            calls.append(("upload_folder", repo_id, files, config["num_classes"], commit_message))
            return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    from splitattn import push_to_hub

    url = push_to_hub(run_dir, "alice/digits", private=True, token="hf_test")
    assert url == "https://huggingface.co/alice/digits/commit/abc"
    assert calls == [("token", "hf_test"), ("create_repo", "alice/digits", True, True),
                     ("upload_folder", "alice/digits", ["README.md", "config.json", "curves.png", "model.safetensors"],
                      10, "Upload resnest14d from splitattn")]
