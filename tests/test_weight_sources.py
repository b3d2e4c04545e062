"""Published weights: every source tried in order against local stand-ins for the hosts, and the
zoo's table of sources, hashes and top-1s. Nothing here reaches the internet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from splitattn import create_model, list_models
from splitattn.cli import main as cli_main
from splitattn.models import get_model_entry
from splitattn.models.published import WeightSource, hub
from splitattn.weights import WeightsUnavailableError, save_state_dict, sha256_of

from .hosts import LocalHost, Route, hub_cache, publish, put_in_hub_cache
from .reference import randomize_, reference_model


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPLITATTN_CACHE", str(cache))
    monkeypatch.setenv("SPLITATTN_DOWNLOAD_TIMEOUT", "1")
    return cache


@pytest.fixture(scope="module")
def published_file(tmp_path_factory) -> tuple[bytes, str, torch.nn.Module]:
    """A resnest14d checkpoint in timm's layout (as timm publishes it), its bytes and sha256."""
    torch.manual_seed(0)
    reference = randomize_(reference_model("resnest14d")).eval()
    path = tmp_path_factory.mktemp("published") / "weights.pth"
    torch.save(reference.state_dict(), path)
    return path.read_bytes(), sha256_of(path), reference


def corrupted(body: bytes) -> bytes:
    """The same bytes with one flipped in the middle, as a bad disk or proxy would serve them."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]


def files_in(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def assert_same_function(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("failure", ["404", "403", "wrong hash", "timeout"])
def test_first_source_fails_and_the_second_serves(failure, published_file, private_cache, monkeypatch):
    body, digest, reference = published_file
    first = {"404": Route(status=404), "403": Route(status=403), "wrong hash": Route(b"<html>not weights</html>"),
             "timeout": Route(body, delay=3)}[failure]
    name = f"resnest14d-{digest[:8]}.pth"
    with LocalHost({f"/first/{name}": first, f"/second/{name}": Route(body)}) as host:
        publish(monkeypatch, "resnest14d", WeightSource(host.url(f"/first/{name}"), digest[:8], "timm"),
                WeightSource(host.url(f"/second/{name}"), digest[:8], "timm"))
        model = create_model("resnest14d", pretrained=True)
        assert host.hits == {f"/first/{name}": 1, f"/second/{name}": 1}
    assert_same_function(model, reference)
    assert model.pretrained_cfg["loaded_from"] == host.url(f"/second/{name}")
    assert files_in(private_cache) == [name], "one verified file, nothing half-written"
    assert sha256_of(private_cache / name) == digest


def test_404_then_403_then_wrong_hash_then_served(published_file, private_cache, monkeypatch):
    body, digest, reference = published_file
    name = f"resnest14d-{digest[:8]}.pth"
    routes = {f"/gone/{name}": Route(status=404), f"/refused/{name}": Route(status=403),
              f"/mirror/{name}": Route(corrupted(body)), f"/hub/{name}": Route(body)}
    with LocalHost(routes) as host:
        publish(monkeypatch, "resnest14d", *(WeightSource(host.url(path), digest[:8], "timm") for path in routes))
        model = create_model("resnest14d", pretrained=True)
        assert all(hits == 1 for hits in host.hits.values()) and len(host.hits) == 4
    assert_same_function(model, reference)
    assert files_in(private_cache) == [name]


def test_a_cached_file_is_used_without_asking_any_host(published_file, private_cache, monkeypatch):
    body, digest, reference = published_file
    name = f"resnest14d-{digest[:8]}.pth"
    with LocalHost({f"/a/{name}": Route(body)}) as host:
        source = WeightSource(host.url(f"/a/{name}"), digest[:8], "timm")
        publish(monkeypatch, "resnest14d", WeightSource(host.url("/down/first.pth"), digest[:8], "timm"), source)
        create_model("resnest14d", pretrained=True)
        hits = dict(host.hits)
        assert_same_function(create_model("resnest14d", pretrained=True), reference)
        assert host.hits == hits, "the second build asked a host again"


def test_every_source_failing_lists_each_attempt_and_where_to_put_the_file(private_cache, monkeypatch):
    with LocalHost({"/forbidden/resnest14d-9c8fe254.pth": Route(status=403)}) as host:
        publish(monkeypatch, "resnest14d",
                WeightSource(host.url("/missing/resnest14d-9c8fe254.pth"), "9c8fe254", "timm"),
                WeightSource(host.url("/forbidden/resnest14d-9c8fe254.pth"), "9c8fe254", "timm"),
                WeightSource("http://127.0.0.1:9/resnest14d-9c8fe254.pth", "9c8fe254", "timm"))
        with pytest.raises(WeightsUnavailableError) as error:
            create_model("resnest14d", pretrained=True)
    message = str(error.value)
    assert "resnest14d.test_in1k from any of their 3 sources" in message
    assert "1. " in message and "HTTP 404" in message
    assert "2. " in message and "HTTP 403" in message
    assert "3. " in message and "could not connect" in message
    assert str(private_cache / "resnest14d-9c8fe254.pth") in message and "SPLITATTN_CACHE" in message
    assert "splitattn download resnest14d.test_in1k" in message
    assert files_in(private_cache) == []


def test_a_hub_repository_serves_when_the_release_files_fail(tmp_path, private_cache, monkeypatch):
    reference = randomize_(reference_model("resnest14d")).eval()
    folder = tmp_path / "repo"
    folder.mkdir()
    save_state_dict(reference.state_dict(), folder / "model.safetensors")  # timm's Hub files are in timm's layout
    with hub_cache(monkeypatch, tmp_path / "hf") as cache, LocalHost({}) as host:
        put_in_hub_cache(cache, "timm/resnest14d.gluon_in1k", folder)
        publish(monkeypatch, "resnest14d", WeightSource(host.url("/gone/resnest14d-9c8fe254.pth"), "9c8fe254", "timm"),
                hub("timm/resnest14d.gluon_in1k"))
        model = create_model("resnest14d", pretrained=True)
    assert_same_function(model, reference)
    assert model.pretrained_cfg["loaded_from"] == "hf-hub:timm/resnest14d.gluon_in1k"


def test_offline_hub_without_the_repository_says_so(tmp_path, monkeypatch):
    with hub_cache(monkeypatch, tmp_path / "hf"):
        publish(monkeypatch, "resnest14d", hub("timm/resnest14d.gluon_in1k"), hub("timm/resnest14d.other"))
        with pytest.raises(WeightsUnavailableError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\).*not in the "
                                                          r"Hugging Face cache"):
            create_model("resnest14d", pretrained=True)


# The zoo's own list: what users get from pretrained=True.
PUBLISHED = [n for n in list_models() if get_model_entry(n).weights]


@pytest.mark.parametrize("name", PUBLISHED)
def test_every_published_weight_set_has_two_sources_a_hash_and_a_top1(name):
    entry = get_model_entry(name)
    for weights in entry.weights:
        urls = [s.url for s in weights.sources]
        assert len(set(urls)) >= 2, f"{name}.{weights.tag} has one source"
        assert len(urls) == len(set(urls))
        for source in weights.sources:
            if source.is_hub:
                assert source.url.startswith("hf-hub:timm/") and source.layout == "timm"
            else:
                assert source.url.startswith(("https://", "http://data.lip6.fr/"))
                assert source.sha256 and len(source.sha256) >= 8 and source.sha256 in source.filename
        assert 60.0 < weights.top1 < 90.0 and weights.top1_by and weights.license and weights.trained_by


def test_names_once_refused_now_have_weights_from_several_hosts():
    for name in ("resnest14d", "resnest26d", "skresnet18", "skresnet34", "skresnext50_32x4d", "resnest50"):
        hosts = {s.host for s in get_model_entry(name).weights_for().sources}
        assert len(hosts) >= 2, name
    official = get_model_entry("resnest50").weights_for().sources
    assert official[0].url == ("https://github.com/zhanghang1989/ResNeSt/releases/download/weights_step1/"
                               "resnest50-528c19ca.pth")
    assert "hf-hub:timm/resnest50d.in1k" in [s.url for s in official]
    assert get_model_entry("skresnext50_32x4d").weights_for().top1 == pytest.approx(80.168)


def test_name_dot_tag_picks_weights_and_their_input_settings():
    assert list_models("seresnet50", pretrained=True) == ["seresnet50.a1_in1k", "seresnet50.ra2_in1k"]
    default = create_model("seresnet50").pretrained_cfg
    ra2 = create_model("seresnet50.ra2_in1k").pretrained_cfg
    assert default["tag"] == "a1_in1k" and default["crop_pct"] == 0.95
    assert ra2["tag"] == "ra2_in1k" and ra2["crop_pct"] == 0.875 and ra2["top1"] == pytest.approx(80.26)
    with pytest.raises(ValueError, match=r"unknown weights tag 'ra_in1k' for 'seresnet50'.*seresnet50.ra2_in1k"):
        create_model("seresnet50.ra_in1k")


def test_zoo_command_shows_weights_and_lists_every_tag(capsys):
    assert cli_main(["zoo", "skresnet*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert "weights" in header and "top-1 (%)" in header
    rows = {cells[0]: dict(zip(header, cells, strict=True))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    assert rows["skresnet18"]["weights"] == "ra_in1k" and rows["skresnet18"]["top-1 (%)"] == "73.02"
    assert rows["skresnet50"]["weights"] == "-"
    assert cli_main(["zoo", "--weights", "seresnet50", "--format", "json"]) == 0
    tags = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in tags] == ["seresnet50.a1_in1k", "seresnet50.ra2_in1k"]
    assert tags[1]["sources"][-1] == "hf-hub:timm/seresnet50.ra2_in1k" and tags[1]["license"] == "apache-2.0"


def test_download_command_fills_the_cache_for_an_offline_machine(published_file, private_cache, monkeypatch,
                                                                   capsys):
    body, digest, reference = published_file
    name = f"resnest14d-{digest[:8]}.pth"
    with LocalHost({f"/{name}": Route(body)}) as host:
        publish(monkeypatch, "resnest14d", WeightSource(host.url(f"/{name}"), digest[:8], "timm"),
                WeightSource(host.url(f"/mirror/{name}"), digest[:8], "timm"))
        assert cli_main(["download", "resnest14d"]) == 0
    assert f"resnest14d.test_in1k: {private_cache / name}" in capsys.readouterr().out
    # The "offline machine": no host answers, the cache serves.
    assert_same_function(create_model("resnest14d", pretrained="published"), reference)
