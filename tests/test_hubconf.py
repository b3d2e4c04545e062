"""torch.hub: the repository's hubconf.py lists, describes and builds every zoo model as create_model does.

``torch.hub.list`` and ``help`` only take a GitHub name; they are tried on a checkout laid out in a
private hub directory as torch.hub leaves a download (``owner_repo_ref``), so nothing is fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import splitattn
from splitattn.models.published import WeightSource

from .hosts import publish

ROOT = Path(__file__).resolve().parents[1]
NAMES = splitattn.list_models()


@pytest.fixture
def hub_checkout(tmp_path, monkeypatch) -> str:
    """The repository's hubconf.py and src/ where torch.hub keeps a download of ``splitattn-user/splitattn:main``."""
    hub_dir = tmp_path / "hub"
    checkout = hub_dir / "splitattn-user_splitattn_main"
    (checkout / "src").mkdir(parents=True)
    shutil.copyfile(ROOT / "hubconf.py", checkout / "hubconf.py")
    shutil.copytree(ROOT / "src" / "splitattn", checkout / "src" / "splitattn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub_dir))
    yield "splitattn-user/splitattn:main"
    torch.hub.set_dir(previous)


def test_hub_list_is_exactly_the_zoo_and_help_describes_the_model(hub_checkout):
    with pytest.warns(UserWarning, match="already imported from"):  # this process's splitattn is not the checkout's
        entries = torch.hub.list(hub_checkout, trust_repo=True, skip_validation=True, verbose=False)
        text = torch.hub.help(hub_checkout, "resnest50", trust_repo=True, skip_validation=True)
        unpublished = torch.hub.help(hub_checkout, "seresnet18", trust_repo=True, skip_validation=True)
    assert entries == sorted(NAMES)
    assert text.startswith("resnest50: a resnest network (27.48 M parameters")
    assert "in1k: 81.03%" in text and "num_classes" in text
    assert "No published weights" in unpublished


def test_a_hub_checkout_runs_its_own_src_not_the_installed_package(hub_checkout, tmp_path):
    """torch.hub does not install what it downloads: the checkout's src/ must win over an installed splitattn."""
    hub_dir = torch.hub.get_dir()
    script = (f"import torch; torch.hub.set_dir({hub_dir!r}); "
              f"m = torch.hub.load({hub_checkout!r}, 'seresnet18', num_classes=3, trust_repo=True, "
              f"skip_validation=True, verbose=False); import sys; print(sys.modules[type(m).__module__].__file__)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(Path(hub_dir) / "splitattn-user_splitattn_main" / "src" / "splitattn"))


def test_hub_load_builds_every_zoo_model_as_create_model_does():
    """Every name, on the meta device (no weights allocated: 43 models in seconds): same class,
    same parameter and buffer names and shapes, same pretrained_cfg and model_args."""
    for name in NAMES:
        with torch.device("meta"):
            hub = torch.hub.load(str(ROOT), name, source="local", num_classes=10, verbose=False)
            ours = splitattn.create_model(name, num_classes=10)
        assert type(hub) is type(ours), name
        assert {k: v.shape for k, v in hub.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
        assert hub.pretrained_cfg == ours.pretrained_cfg and hub.model_args == ours.model_args, name


@pytest.mark.parametrize("name", ["resnest14d", "seresnet18", "skresnet18", "legacy_seresnet18"])
def test_hub_model_computes_what_create_model_computes(name):
    hub = torch.hub.load(str(ROOT), name, source="local", num_classes=10, drop_rate=0.2, verbose=False).eval()
    ours = splitattn.create_model(name, num_classes=10, drop_rate=0.2).eval()
    ours.load_state_dict(hub.state_dict())
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(hub(images), ours(images), rtol=0, atol=0)


@pytest.fixture
def published_resnest14d(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """resnest14d's published weights (tag test_in1k) already in the weights cache, their host down."""
    weights = splitattn.create_model("resnest14d").state_dict()
    cache = tmp_path / "cache"
    cache.mkdir()
    staged = tmp_path / "weights.pth"
    torch.save(weights, staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    filename = f"resnest14d-{digest[:8]}.pth"
    shutil.move(staged, cache / filename)
    monkeypatch.setenv("SPLITATTN_CACHE", str(cache))
    monkeypatch.setenv("SPLITATTN_DOWNLOAD_TIMEOUT", "1")
    publish(monkeypatch, "resnest14d", WeightSource(f"http://127.0.0.1:9/{filename}", digest[:8], "timm"))
    return weights


@pytest.mark.parametrize("pretrained", [True, "test_in1k"])
def test_hub_pretrained_loads_the_published_weights_from_the_cache(published_resnest14d, pretrained):
    model = torch.hub.load(str(ROOT), "resnest14d", source="local", pretrained=pretrained, verbose=False)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, published_resnest14d[key], rtol=0, atol=0, msg=key)
    assert model.pretrained_cfg["tag"] == "test_in1k"


def test_hub_pretrained_with_num_classes_replaces_the_classifier_as_create_model_does(published_resnest14d):
    with pytest.warns(UserWarning) as hub_warnings:
        hub = torch.hub.load(str(ROOT), "resnest14d", source="local", pretrained=True, num_classes=7, verbose=False)
    with pytest.warns(UserWarning) as our_warnings:
        ours = splitattn.create_model("resnest14d", pretrained=True, num_classes=7)
    assert [str(w.message) for w in hub_warnings] == [str(w.message) for w in our_warnings]
    assert hub.fc.out_features == ours.fc.out_features == 7
    for key, value in hub.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(value, published_resnest14d[key], rtol=0, atol=0, msg=key)
