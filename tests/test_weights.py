"""Pretrained weights: loading reference checkpoints, converting both ways, and refusing bad files."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.models.published import WeightSource
from splitattn.weights import (
    CheckpointError,
    HashMismatchError,
    convert_state_dict,
    export_state_dict,
    load_checkpoint_file,
    save_state_dict,
    sha256_of,
)

from .hosts import publish
from .reference import max_relative_error, randomize_, reference_model

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Every test downloads into its own empty cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPLITATTN_CACHE", str(cache))
    return cache


def cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def _assert_matches_reference(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    model.eval()
    for shape in ((2, 3, 64, 64), (1, 3, 57, 80)):
        x = torch.randn(shape)
        with torch.no_grad():
            assert max_relative_error(model(x), reference(x)) <= TOLERANCE


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("resnest50", ".pth"),
        ("resnest50d", ".pth"),
        ("seresnext26d_32x4d", ".pt"),
        ("skresnet18", ".pth"),
        ("skresnext50_32x4d", ".safetensors"),
        ("legacy_seresnet18", ".pth"),
        ("legacy_seresnext26_32x4d", ".safetensors"),
    ],
)
def test_reference_checkpoint_loads_through_pretrained_file(name, suffix, tmp_path):
    torch.manual_seed(0)
    reference = randomize_(reference_model(name))
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".safetensors":
        save_state_dict(reference.state_dict(), path)
    else:
        torch.save(reference.state_dict(), path)
    _assert_matches_reference(create_model(name, pretrained=str(path)), reference)


def test_reference_checkpoint_loads_through_file_url_and_hash(tmp_path, private_cache):
    reference = randomize_(reference_model("resnest50"))
    plain = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), plain)
    digest = sha256_of(plain)
    named = plain.rename(tmp_path / f"resnest50-{digest[:8]}.pth")  # torch hub naming: hash in the name
    model = create_model("resnest50", pretrained=named.as_uri())
    _assert_matches_reference(model, reference)
    assert cached_files(private_cache) == [], "a local file is read in place, not copied into the cache"


def test_a_local_file_named_with_a_hash_is_checked_against_it(tmp_path):
    path = tmp_path / "resnest50-528c19ca.pth"  # the published file's name, other contents
    torch.save(create_model("resnest50").state_dict(), path)
    with pytest.raises(HashMismatchError, match=r"expected sha256 starting with 528c19ca.*rename the file"):
        create_model("resnest50", pretrained=path)
    with pytest.raises(HashMismatchError, match="528c19ca"):
        create_model("resnest50", pretrained=path.as_uri())


def test_a_missing_file_url_is_a_missing_file_not_a_failed_download(tmp_path):
    with pytest.raises(CheckpointError, match=r"nowhere\.pth' does not exist") as error:
        create_model("resnet18", pretrained=(tmp_path / "nowhere.pth").as_uri())
    assert "download" not in str(error.value) and "offline" not in str(error.value)


def test_command_line_errors_name_flags_and_python_errors_name_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"pretrained=PATH") as error:
        create_model("skresnet50", pretrained=True)
    assert "--pretrained" not in str(error.value)
    assert cli_main(["train", "--model", "skresnet50", "--pretrained", "published", "--output",
                     str(tmp_path / "run")]) == 2
    message = capsys.readouterr().err
    assert "--pretrained PATH" in message and "pretrained=" not in message
    weights = save_state_dict(create_model("resnet18", num_classes=3).state_dict(), tmp_path / "r18.safetensors")
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 40), "white").save(image)
    assert cli_main(["predict", str(image), "--checkpoint", str(weights)]) == 2
    message = capsys.readouterr().err
    assert "does not say which architecture it holds" in message and "--model NAME" in message
    assert "model_name" not in message


def test_pretrained_true_downloads_once_verifies_and_converts(tmp_path, private_cache, monkeypatch):
    reference = randomize_(reference_model("legacy_seresnet18"))
    served = tmp_path / "served" / "seresnet18-published.pth"
    served.parent.mkdir()
    torch.save(reference.state_dict(), served)
    publish(monkeypatch, "legacy_seresnet18", WeightSource(served.as_uri(), sha256_of(served)[:8], "timm"))
    _assert_matches_reference(create_model("legacy_seresnet18", pretrained=True), reference)
    served.unlink()  # the second build must come from the cache
    _assert_matches_reference(create_model("legacy_seresnet18", pretrained="published"), reference)
    assert len(cached_files(private_cache)) == 1


def test_training_checkpoint_with_ddp_prefix_and_args_loads(tmp_path):
    model = create_model("resnest14d", num_classes=7).eval()
    wrapped = {
        "epoch": 3,
        "args": argparse.Namespace(lr=0.1, model="resnest14d"),
        "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
    }
    torch.save(wrapped, tmp_path / "checkpoint.pth.tar")
    loaded = create_model("resnest14d", num_classes=7, pretrained=tmp_path / "checkpoint.pth.tar").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize(
    "name", ["resnest50d", "seresnet18", "skresnet18", "skresnext50_32x4d", "legacy_seresnet18", "legacy_senet154"]
)
def test_round_trip_ours_to_timm_to_ours_is_exact(name):
    ours = randomize_(create_model(name)).eval()  # every BN distinct, so a swapped key would show
    state = ours.state_dict()
    timm_state = export_state_dict(state, "timm", name)
    reference = reference_model(name).eval()
    reference.load_state_dict(timm_state, strict=True)  # timm accepts the export as its own
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max_relative_error(ours(x), reference(x)) <= 1e-5, "timm computes the same function"
    back = convert_state_dict(timm_state, "timm", name)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_round_trip_through_safetensors_is_exact(tmp_path):
    state = randomize_(create_model("skresnet18")).state_dict()
    path = save_state_dict(state, tmp_path / "model.safetensors")
    back = load_checkpoint_file(path)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pth.*could run code"):
        create_model("resnet18", pretrained=path)
    assert not marker.exists(), "the pickled payload was executed"


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_gives_an_error_naming_it(tmp_path, suffix):
    path = tmp_path / f"resnet18{suffix}"
    save_state_dict(create_model("resnet18").state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"resnet18\{suffix}.*(truncated|corrupted)"):
        create_model("resnet18", pretrained=path)


def test_empty_and_missing_files_are_named(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(CheckpointError, match=r"empty\.pth.*empty \(0 bytes\)"):
        create_model("resnet18", pretrained=empty)
    with pytest.raises(CheckpointError, match=r"nowhere\.pth.*does not exist"):
        create_model("resnet18", pretrained=tmp_path / "nowhere.pth")


def test_hash_mismatch_names_both_hashes_and_caches_nothing(tmp_path, private_cache):
    path = tmp_path / "resnet18-deadbeef.pth"
    torch.save(create_model("resnet18").state_dict(), path)
    actual = sha256_of(path)
    with pytest.raises(HashMismatchError) as error:
        create_model("resnet18", pretrained=path.as_uri())
    assert "deadbeef" in str(error.value) and actual in str(error.value)
    assert cached_files(private_cache) == []


def test_wrong_architecture_lists_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(create_model("resnet18").state_dict(), path)
    with pytest.raises(CheckpointError) as error:
        create_model("resnet50", pretrained=path)
    message = str(error.value)
    assert "does not fit 'resnet50'" in message
    assert "missing keys" in message and "layer1.0.conv3.weight" in message
    assert "shape mismatches" in message and "fc.weight (1000, 512) vs (1000, 2048)" in message


def test_model_without_published_weights_says_how_to_load_a_file():
    with pytest.raises(ValueError, match=r"no published weights .* 'skresnet50'.*zoo --weights.*pretrained=PATH"):
        create_model("skresnet50", pretrained=True)


def test_fine_tuning_drops_a_classifier_of_another_size_with_a_warning(tmp_path):
    source = randomize_(create_model("seresnet18"))
    path = save_state_dict(source.state_dict(), tmp_path / "seresnet18.safetensors")
    with pytest.warns(UserWarning, match="classifier trained for 1000 classes, model has 5"):
        model = create_model("seresnet18", pretrained=path, num_classes=5)
    assert model.fc.out_features == 5
    assert torch.equal(model.layer4[1].bn2.weight, source.layer4[1].bn2.weight)


@pytest.mark.parametrize("in_chans", [1, 4])
def test_first_conv_is_adapted_to_other_input_channels(tmp_path, in_chans):
    source = create_model("resnest14d")
    path = save_state_dict(source.state_dict(), tmp_path / "resnest14d.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same head: no warning expected
        model = create_model("resnest14d", pretrained=path, in_chans=in_chans)
    trained = source.conv1[0].weight
    adapted = model.conv1[0].weight
    assert adapted.shape[1] == in_chans
    if in_chans == 1:
        torch.testing.assert_close(adapted[:, 0], trained.sum(1))
    else:
        torch.testing.assert_close(adapted[:, :3], trained * 3 / 4)
        torch.testing.assert_close(adapted[:, 3], trained[:, 0] * 3 / 4)


def test_features_only_backbone_gets_the_classifier_checkpoint(tmp_path):
    source = randomize_(create_model("resnest14d"))
    path = save_state_dict(source.state_dict(), tmp_path / "resnest14d.safetensors")
    backbone = create_model("resnest14d", pretrained=path, features_only=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[-1], source.forward_features(x))


def test_convert_cli_official_to_safetensors_and_ours_to_timm(tmp_path, capsys):
    reference = randomize_(reference_model("resnest50"))
    official = tmp_path / "resnest50-official.pth"
    torch.save(reference.state_dict(), official)
    ours = tmp_path / "resnest50.safetensors"
    assert cli_main(["convert", str(official), str(ours), "--model", "resnest50"]) == 0
    assert "wrote" in capsys.readouterr().out
    _assert_matches_reference(create_model("resnest50", pretrained=ours), reference)

    sk = randomize_(create_model("skresnet18"))
    sk_path = save_state_dict(sk.state_dict(), tmp_path / "sk.safetensors")
    timm_path = tmp_path / "sk-timm.pth"
    assert cli_main(["convert", str(sk_path), str(timm_path), "--model", "skresnet18", "--to", "timm"]) == 0
    timm_model = reference_model("skresnet18").eval()
    timm_model.load_state_dict(load_checkpoint_file(timm_path), strict=True)
    _assert_matches_reference(sk.eval(), timm_model)


def test_convert_cli_reports_a_wrong_architecture(tmp_path, capsys):
    path = save_state_dict(create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    assert cli_main(["convert", str(path), str(tmp_path / "out.pth"), "--model", "seresnet18"]) == 2
    err = capsys.readouterr().err
    assert "does not fit 'seresnet18'" in err and "missing keys" in err and "layer1.0.se.fc1.weight" in err
    assert not (tmp_path / "out.pth").exists()
