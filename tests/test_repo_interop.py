"""Shared repositories that timm, transformers' pipeline and splitattn all load (offline, local folders).

Every zoo model that names a timm architecture is timm's network: timm's model given our weights
(converted to its layout) computes our outputs. A repository written by ``save_pretrained`` of one
model per family is then loaded by splitattn and by timm with the same outputs, and by
transformers' ``pipeline("image-classification")`` with the same top-1 class names; a model timm
lacks, or one built with a changed ``attn.`` field, is refused loudly by timm and transformers.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch

from splitattn import create_model, list_models, save_pretrained
from splitattn.data.transforms import eval_transform
from splitattn.models import get_model_entry
from splitattn.weights import export_state_dict, save_state_dict

from .hosts import hub_cache, put_in_hub_cache
from .reference import max_relative_error, randomize_

timm = pytest.importorskip("timm", reason="the interop tests need timm (pip install -e .[test])")
pytest.importorskip("transformers", reason="the pipeline tests need transformers (pip install -e .[test])")

SIZE = 64
CLASSES = ["cat", "dog", "fox", "owl"]
# timm's attention blocks (split attention, selective kernels) reduce in another order than ours:
# fp32 rounding moves outputs by up to ~1e-6 of their scale; the SE and plain networks agree exactly.
ROUNDING = 1e-5
# The five ablation models of the ResNeSt paper that timm never ported.
WITHOUT_TIMM = {"resnest50_fast_1s1x64d", "resnest50_fast_2s1x64d", "resnest50_fast_4s1x64d",
                "resnest50_fast_1s2x40d", "resnest50_fast_2s2x40d"}
# One model per distinct network: every official ResNeSt name (timm has it under another name), and
# one of each block, stem and width among timm's names (test_parity checks every one of those
# against timm under its own name). The others are deeper or shallower copies of the same blocks:
# together they would add ~10 s on two cores.
CHECKED = ["resnest50", "resnest101", "resnest50_fast_1s4x24d", "resnest50_fast_4s2x40d", "resnest14d",
           "seresnet18", "seresnet50", "seresnext26d_32x4d", "legacy_seresnet18", "legacy_seresnet50",
           "legacy_seresnext26_32x4d", "legacy_senet154", "skresnet18", "skresnet50", "skresnext50_32x4d",
           "resnet18", "resnet50d"]
# One model per family: the official ResNeSt name, timm's ResNeSt, SE, SK, the original SENet release.
TIMM_FORMAT = ["resnest50", "resnest14d", "seresnet50", "skresnet18", "legacy_seresnet18"]
# timm lacks the first; the second changes an attention field timm's resnest14d has no argument for.
SPLITATTN_ONLY = [("resnest50_fast_1s1x64d", {}), ("resnest14d", {"attn": {"radix": 4}})]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _timm(name: str, **kwargs) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timm.create_model(name, **kwargs).eval()


def test_every_zoo_model_but_five_ablation_models_names_a_timm_architecture():
    lacking = {name for name in list_models() if get_model_entry(name).timm_name is None}
    assert lacking == WITHOUT_TIMM
    named = {name: get_model_entry(name).timm_name for name in list_models() if name not in lacking}
    assert [timm_name for timm_name in named.values() if not timm.is_model(timm_name)] == []
    assert named["resnest50"] == "resnest50d" and named["resnest269"] == "resnest269e"
    assert named["resnest50_fast_4s2x40d"] == "resnest50d_4s2x40d"


@pytest.mark.parametrize("name", CHECKED)
def test_the_timm_architecture_is_the_same_network(name):
    ours = randomize_(create_model(name, num_classes=7))
    theirs = _timm(get_model_entry(name).timm_name, num_classes=7)
    theirs.load_state_dict(export_state_dict(ours.state_dict(), "timm", name))  # strict: every tensor has a place
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert max_relative_error(ours(x), theirs(x)) <= ROUNDING


def _images() -> list:
    """Four images of SIZE px: the model's eval transform (crop 1.0) then only normalises them."""
    from PIL import Image

    gen = torch.Generator().manual_seed(1)
    images = []
    for _ in CLASSES:
        pixels = (torch.rand(SIZE // 8, SIZE // 8, 3, generator=gen) * 255).to(torch.uint8)
        images.append(Image.fromarray(pixels.numpy()).resize((SIZE, SIZE), Image.NEAREST))
    return images


def _inputs(model: torch.nn.Module, images: list) -> torch.Tensor:
    cfg = model.pretrained_cfg
    transform = eval_transform(cfg["input_size"][-1], cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"])
    return torch.stack([transform(image) for image in images])


def _pre_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.forward_head(model.forward_features(x), pre_logits=True)


def _classifier_of_the_images(model: torch.nn.Module, images: list) -> torch.nn.Module:
    """Make ``model`` tell the images apart: its head scores each image's (centred) features as its class."""
    with torch.no_grad():
        features = _pre_logits(model, _inputs(model, images))
        mean = features.mean(0)
        centred = features - mean
        weight = centred / centred.norm(dim=1, keepdim=True) * (20 / centred.norm(dim=1).mean())
        model.fc.weight.copy_(weight)  # class i scores (f - mean) . c_i: largest for image i (Cauchy-Schwarz)
        model.fc.bias.copy_(-weight @ mean)
    return model


def _shared(name: str, folder: Path, **kwargs) -> torch.nn.Module:
    """A random ``name`` at SIZE px that classifies _images() as CLASSES, written by save_pretrained."""
    model = randomize_(create_model(name, num_classes=len(CLASSES), **kwargs))
    model.pretrained_cfg.update(input_size=(3, SIZE, SIZE), crop_pct=1.0)
    _classifier_of_the_images(model, _images())
    save_pretrained(model, folder, class_names=CLASSES)
    return model


def _card_metadata(folder: Path) -> str:
    return (folder / "README.md").read_text().split("---")[1]


@pytest.mark.parametrize("name", TIMM_FORMAT)
def test_a_shared_model_timm_has_loads_in_splitattn_timm_and_transformers(name, tmp_path):
    folder = tmp_path / name
    model = _shared(name, folder)
    timm_name = get_model_entry(name).timm_name
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == timm_name and config["model_args"] == {}, "nothing timm cannot take"
    assert "library_name: timm" in _card_metadata(folder) and "timm, splitattn" in _card_metadata(folder)
    x = _inputs(model, _images())
    with torch.no_grad():
        expected = model(x)
    assert expected.argmax(1).tolist() == [0, 1, 2, 3], "each image its own class, confidently"

    ours = create_model(f"local-dir:{folder}").eval()
    assert type(ours) is type(model)
    with torch.no_grad():
        assert torch.equal(ours(x), expected)
    for key in ("label_names", "input_size", "crop_pct", "interpolation", "mean", "std", "architecture"):
        assert ours.pretrained_cfg[key] == model.pretrained_cfg[key], key

    theirs = _timm(f"local-dir:{folder}", pretrained=True)
    assert type(theirs) is type(_timm(timm_name))
    with torch.no_grad():
        assert max_relative_error(_pre_logits(theirs, x), _pre_logits(model, x)) <= ROUNDING
        # the head subtracts the features' mean, which magnifies their rounding about tenfold
        assert max_relative_error(theirs(x), expected) <= 10 * ROUNDING
    assert theirs.pretrained_cfg["label_names"] == CLASSES
    assert tuple(theirs.pretrained_cfg["input_size"]) == (3, SIZE, SIZE)
    default = _timm(timm_name).pretrained_cfg  # timm adapts the first conv and drops the head by these names
    assert (theirs.pretrained_cfg["first_conv"], theirs.pretrained_cfg["classifier"]) == (
        default["first_conv"], default["classifier"])

    from transformers import pipeline

    classify = pipeline("image-classification", model=str(folder))
    answers = classify(_images(), top_k=1)
    assert [answer[0]["label"] for answer in answers] == CLASSES


def test_timm_loads_a_shared_model_from_the_hub_cache(tmp_path, monkeypatch):
    model = _shared("skresnet18", tmp_path / "repo")
    with hub_cache(monkeypatch, tmp_path / "hf-cache") as cache:
        put_in_hub_cache(cache, "alice/skresnet18-pets", tmp_path / "repo")
        theirs = _timm("hf-hub:alice/skresnet18-pets", pretrained=True)
        ours = create_model("hf-hub:alice/skresnet18-pets").eval()
    x = _inputs(model, _images())
    with torch.no_grad():
        assert torch.equal(ours(x), model(x))
        assert max_relative_error(_pre_logits(theirs, x), _pre_logits(model, x)) <= ROUNDING


@pytest.mark.parametrize(("name", "kwargs"), SPLITATTN_ONLY, ids=[name for name, _ in SPLITATTN_ONLY])
def test_a_model_timm_cannot_build_is_shared_as_splitattn_only_and_refused_loudly(name, kwargs, tmp_path):
    folder = tmp_path / name
    model = _shared(name, folder, **kwargs)
    config = json.loads((folder / "config.json").read_text())
    assert "pretrained_cfg" not in config, "transformers takes a config with pretrained_cfg for timm's"
    assert config["splitattn"]["model_args"].get("attn") == kwargs.get("attn")
    card = (folder / "README.md").read_text()
    assert "library_name: splitattn" in _card_metadata(folder) and "timm" not in _card_metadata(folder)
    reason = "timm has no resnest50_fast_1s1x64d network" if not kwargs else "built with attn={'radix': 4}"
    assert reason in card and reason in config["splitattn_only"]

    ours = create_model(f"local-dir:{folder}").eval()
    x = _inputs(model, _images())
    with torch.no_grad():
        assert torch.equal(ours(x), model(x))
    assert ours.pretrained_cfg["label_names"] == CLASSES and ours.model_args.get("attn") == kwargs.get("attn")

    refusal = re.escape(f"Unknown model (splitattn:{name})")
    for pretrained in (True, False):  # not a random network without the weights either
        with pytest.raises(RuntimeError, match=refusal):
            _timm(f"local-dir:{folder}", pretrained=pretrained)
    from transformers import pipeline

    with pytest.raises(ValueError, match="model_type"):
        pipeline("image-classification", model=str(folder))


def test_a_repository_written_by_earlier_versions_still_loads(tmp_path):
    # What save_pretrained wrote before repositories came in timm's format: timm-shaped keys, our
    # name as architecture, library_name splitattn, weights in our layout.
    model = randomize_(create_model("skresnet18", num_classes=3, attn={"reduction": 4}))
    folder = tmp_path / "old"
    folder.mkdir()
    save_state_dict(model.state_dict(), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({
        "architecture": "skresnet18", "num_classes": 3, "in_chans": 3, "num_features": 512, "global_pool": "avg",
        "model_args": {"output_stride": 32, "attn": {"reduction": 4}}, "label_names": ["a", "b", "c"],
        "pretrained_cfg": {"input_size": [3, 48, 48], "crop_pct": 1.0, "interpolation": "bicubic",
                           "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "first_conv": "conv1",
                           "classifier": "fc", "num_classes": 3},
        "library_name": "splitattn", "library_version": "0.1.0",
    }))
    loaded = create_model(f"local-dir:{folder}").eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    cfg = loaded.pretrained_cfg
    assert cfg["label_names"] == ["a", "b", "c"] and cfg["input_size"] == (3, 48, 48) and cfg["mean"] == (0.5,) * 3


def test_a_grayscale_model_keeps_its_one_channel_in_timm_and_splitattn(tmp_path):
    model = randomize_(create_model("legacy_seresnet18", num_classes=3, in_chans=1))
    save_pretrained(model, tmp_path / "gray")
    assert json.loads((tmp_path / "gray" / "config.json").read_text())["model_args"] == {"in_chans": 1}
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(create_model(f"local-dir:{tmp_path / 'gray'}").eval()(x), model(x))
        assert torch.equal(_timm(f"local-dir:{tmp_path / 'gray'}", pretrained=True)(x), model(x))
