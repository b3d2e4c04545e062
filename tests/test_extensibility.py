"""Attention kinds are typed specs, and a new kind needs no change to the package.

ECA (Wang et al., 2020: "ECA-Net: Efficient Channel Attention") is defined in this file only: a
gate that runs a 1-D conv across the pooled channels. It goes through everything the built-in kinds
go through: a zoo entry, create_model, a training step, deploy (folded and fused, checked against
eval mode), the layer summary and explain.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from PIL import Image
from torch import nn

import splitattn
from splitattn.deploy import count_batchnorms, deploy, deployment_of, relative_error
from splitattn.inspect import summarize_model
from splitattn.inspect.explain import explain_image
from splitattn.layers import (
    AttentionSpec,
    Gate,
    NoAttention,
    SelectiveKernel,
    SplitAttention,
    SqueezeExcitation,
    spatial_mean,
)
from splitattn.models import Bottleneck, PretrainedCfg, get_model_entry
from splitattn.models.registry import _REGISTRY, ModelEntry, register

SRC = Path(__file__).resolve().parents[1] / "src" / "splitattn"


class EcaGate(Gate):
    """sigmoid(conv1d(pooled channels)): each channel's gate sees its ``kernel_size`` neighbours."""

    kind: ClassVar[str] = "eca"
    choice_label: ClassVar[str] = "gate"
    title: ClassVar[str] = "efficient channel attention: channel gates"

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.input_act = nn.Identity()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        pooled = spatial_mean(x)  # (B, C)
        return torch.sigmoid(self.conv(pooled.unsqueeze(1))).view(x.shape[0], -1, 1, 1)

    def describe_step(self, op: str, shape: tuple[int, ...]) -> str:
        return {"sigmoid": "channel gate"}.get(op, "")

    def describe_child(self, name: str) -> str:
        return "1-D conv across neighbouring channels" if name == "conv" else ""


@dataclass(frozen=True)
class EfficientChannelAttention(AttentionSpec):
    kind: ClassVar[str] = "eca"
    kernel_size: int = 3

    def gate(self, channels: int, *, act_layer) -> nn.Module:
        return EcaGate(self.kernel_size)


@pytest.fixture(scope="module")
def eca_model_name():
    name = "ecaresnet_tiny"
    register(ModelEntry(name=name, family="ecanet", reference="timm",
                        architecture=dict(block=Bottleneck, layers=(1, 1, 1, 1), stem_width=32, deep_stem=True,
                                          attn=EfficientChannelAttention(kernel_size=5)),
                        base_cfg=PretrainedCfg(input_size=(3, 64, 64))))
    yield name
    _REGISTRY.pop(name)


def test_a_new_kind_builds_trains_deploys_summarises_and_explains(eca_model_name, tmp_path):
    from .reference import randomize_  # here, not at the top: it skips without timm, the other tests need none
    model = splitattn.create_model(eca_model_name, num_classes=5, zero_init_last=False)
    assert isinstance(model.layer2[0].se, EcaGate) and model.layer2[0].se.conv.kernel_size == (5,)

    # a training step moves the new gate's weights
    before = model.layer3[0].se.conv.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert not torch.equal(model.layer3[0].se.conv.weight, before)

    # deploy: every BN folded, gated blocks fused, outputs within 1e-4 of eval mode (deploy checks)
    model = randomize_(model)  # random BN statistics, so that folding them changes the weights; eval mode
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    deployed = deploy(model, example_input=x)
    assert count_batchnorms(deployed) == 0
    assert deployment_of(deployed).fusions["residual_fused"] == 4
    assert {type(m).__name__ for m in deployed.modules()} >= {"FusedGatedBottleneck"}
    with torch.no_grad():
        assert relative_error(deployed(x), expected) < 1e-4

    # the summary names the new layer's steps in its own words
    summary = summarize_model(eca_model_name)
    notes = {row.note for row in summary.rows if row.path.startswith("layer1.0.se")}
    assert "1-D conv across neighbouring channels" in notes and "channel gate" in notes

    # explain records the new kind's weights and draws them
    image = tmp_path / "square.png"
    Image.new("RGB", (80, 80), (200, 30, 30)).save(image)
    result = explain_image(model, image, tmp_path / "pictures")
    assert {r.kind for r in result.records} == {"eca"} and len(result.records) == 4
    assert all(r.weights.shape == (1, 1, 1, r.weights.shape[-1]) for r in result.records)
    assert sorted(p.name for p in result.files) == ["attention_layer1.png", "attention_layer2.png",
                                                     "attention_layer3.png", "attention_layer4.png", "gradcam.png"]


def test_a_new_kinds_fields_are_checked_and_merged(eca_model_name):
    with pytest.raises(TypeError, match=r"EfficientChannelAttention has no field 'kernel' \(did you mean "
                                        r"'kernel_size'\?\); its fields are: kernel_size"):
        splitattn.create_model(eca_model_name, attn={"kernel": 7})
    model = splitattn.create_model(eca_model_name, attn={"kernel_size": 7})
    assert model.layer1[0].se.conv.kernel_size == (7,)


# Each built-in kind: a misspelled field fails, a partial override keeps the entry's other fields.
KINDS = [
    ("resnest50d_4s2x40d", SplitAttention, {"raddix": 4}, {"reduction": 2}, "radix", 4),
    ("legacy_seresnet18", SqueezeExcitation, {"reduce": 8}, {"reduction": 8}, "divisor", None),
    ("skresnet18", SelectiveKernel, {"sk_reduction": 4}, {"reduction": 4}, "split_input", True),
    ("resnet18", NoAttention, {"radix": 2}, {}, None, None),
]


@pytest.mark.parametrize(("name", "kind", "typo", "change", "kept", "value"), KINDS)
def test_attention_fields_are_typed_and_overrides_keep_the_rest(name, kind, typo, change, kept, value):
    entry_attn = get_model_entry(name).architecture.get("attn", NoAttention())
    assert isinstance(entry_attn, kind)
    field = next(iter(typo))
    with pytest.raises(TypeError, match=rf"{kind.__name__} has no field {field!r}.*its fields are"):
        splitattn.create_model(name, attn=typo)
    with pytest.raises(TypeError, match=rf"{kind.__name__} has no field {field!r}"):
        splitattn.create_model(name, attn_args=typo)  # the older spelling is checked the same way
    if change:
        merged = entry_attn.merged(change)
        assert getattr(merged, kept) == value == getattr(entry_attn, kept), "the entry's other fields are kept"
        model = splitattn.create_model(name, attn=change)
        assert model.model_args["attn"] == change


def test_overrides_build_what_they_say():
    radix4 = splitattn.create_model("resnest14d", attn={"radix": 4})
    assert radix4.layer1[0].conv2.radix == 4 and radix4.layer1[0].conv2.fc1.out_channels == 64  # reduction kept
    sk = splitattn.create_model("skresnet18", attn={"reduction": 4})
    assert sk.layer1[0].conv1.split_input, "split_input kept from the entry"
    replaced = splitattn.create_model("resnet18", attn=SqueezeExcitation(reduction=4))
    assert replaced.layer1[0].se.fc1.out_channels == 16
    with pytest.raises(TypeError, match="attn must be an attention spec"):
        splitattn.create_model("resnet18", attn="se")
    with pytest.raises(ValueError, match="SplitAttention needs Bottleneck blocks"):
        splitattn.create_model("resnet18", attn=SplitAttention())


def test_norm_and_activation_are_arguments_with_the_same_parameter_names():
    from functools import partial

    from torchvision.ops import FrozenBatchNorm2d

    plain = splitattn.create_model("resnest14d")
    frozen = splitattn.create_model("resnest14d", norm_layer=FrozenBatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    names = {k for k in plain.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(frozen.state_dict()) == names, "a BN checkpoint loads into the frozen model"
    grouped = splitattn.create_model("seresnet18", norm_layer=partial(nn.GroupNorm, 8), act_layer=nn.SiLU)
    assert isinstance(grouped.layer1[0].bn1, nn.GroupNorm) and isinstance(grouped.layer1[0].act1, nn.SiLU)
    assert grouped(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_every_block_has_the_same_submodules_and_its_own_dropblocks():
    shapes = {}
    for name in ("resnet50", "seresnet50", "skresnet50", "resnest50d"):
        model = splitattn.create_model(name, drop_block_rate=0.1)
        block = model.layer3[1]
        shapes[name] = [child for child, _ in block.named_children()]
        drops = [m for m in model.modules() if type(m).__name__ == "DropBlock2d"]
        assert drops and len({id(m) for m in drops}) == len(drops), f"{name}: a DropBlock shared between places"
    assert len({tuple(v) for v in shapes.values()}) == 1, shapes


def test_forward_always_returns_logits_and_the_backbone_its_maps():
    model = splitattn.create_model("resnest14d").eval()
    backbone = splitattn.create_model("resnest14d", features_only=True, out_indices=(2, 4)).eval()
    x = torch.randn(1, 3, 64, 64)
    assert model(x).shape == (1, 1000)
    maps = backbone(x)
    assert isinstance(maps, list) and [m.shape[1] for m in maps] == backbone.feature_channels == [512, 2048]
    assert not hasattr(backbone, "layer5") and not hasattr(backbone, "fc")


# The package's layers, lowest first: a module may import only from its own layer and those before it.
LAYERS = ["errors", "interface", "optional", "layers", "models", "weights", "factory", "deploy", "quantize",
          "export", "data", "training", "inspect", "bench", "dense", "detection", "segmentation", "sharing", "cli"]
TOP = ("__init__", "__main__")  # the public API and ``python -m splitattn`` sit above every layer


def _units() -> set[str]:
    """Every unit of the package as it is on disk: each module and sub-package of ``splitattn``."""
    return {p.stem for p in SRC.glob("*.py") if p.stem not in TOP} | {p.name for p in SRC.iterdir()
                                                                      if (p / "__init__.py").is_file()}


def _unit_of(parts: list[str], names: list[str]) -> set[str]:
    """The units an import of ``splitattn.<parts>`` names, ``names`` being what ``from ... import`` takes.

    ``from splitattn import models`` (or ``from .. import models``) imports the unit ``models``;
    ``from splitattn import create_model`` imports the package's ``__init__``, which sits on top.
    """
    if parts:
        return {parts[0]}
    units = _units()
    return {name if name in units else "__init__" for name in names}


def _imports(path: Path) -> set[str]:
    """The package-level units (``models``, ``weights`` ...) a source file imports: relatively, or
    absolutely through ``splitattn.``, at the top of the file or inside a function."""
    package = list(path.relative_to(SRC).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root, *parts = alias.name.split(".")
                if root == "splitattn":
                    found |= _unit_of(parts, ["__init__"])
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            module = node.module.split(".") if node.module else []
            if node.level:
                if node.level - 1 > len(package):
                    raise AssertionError(f"{path}: relative import above the package (level {node.level})")
                found |= _unit_of(package[: len(package) - (node.level - 1)] + module, names)
            elif module[:1] == ["splitattn"]:
                found |= _unit_of(module[1:], names)
    return found


def test_the_import_graph_tools_see_every_kind_of_import(tmp_path, monkeypatch):
    """The reader below finds relative, absolute and lazy imports, and ``splitattn``'s own API."""
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    for unit in ("models", "layers", "cli"):
        (tmp_path / unit).mkdir()
        (tmp_path / unit / "__init__.py").write_text("")
    (tmp_path / "interface.py").write_text("")
    probe = tmp_path / "models" / "zoo.py"
    probe.write_text("from ..layers import conv\nfrom . import registry\nimport splitattn.cli.train\n"
                     "from splitattn import interface, create_model\n"
                     "def lazy():\n    from splitattn.layers.pooling import spatial_mean\n")
    assert _units() == {"models", "layers", "cli", "interface"}
    assert _imports(probe) == {"layers", "models", "cli", "interface", "__init__"}


def test_the_import_graph_only_points_down():
    units = _units()
    assert units - set(LAYERS) == set(), "units missing from LAYERS: place each in its layer"
    assert set(LAYERS) - units == set(), "LAYERS names units the package does not have"
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).parts
        unit = parts[0].removesuffix(".py")
        if unit in TOP:
            continue
        for target in sorted(_imports(path) - {unit}):
            assert target not in TOP, f"{path.relative_to(SRC)} imports splitattn's public API ({target}), the top"
            assert LAYERS.index(target) < LAYERS.index(unit), f"{path.relative_to(SRC)} imports up into {target}/"


def test_no_attention_kind_is_compared_as_a_string_outside_layers():
    pattern = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](splat|se|sk)["']|["'](splat|se|sk)["']\s*(==|!=)""")
    offenders = [f"{path.relative_to(SRC)}:{number}" for path in SRC.rglob("*.py")
                 if path.relative_to(SRC).parts[0] != "layers"
                 for number, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert offenders == []


def _write_unfrozen_torchscript(model: nn.Module, path: Path, example: torch.Tensor, precision: str,
                                calibration: list[torch.Tensor] | None) -> Path:
    """A new export format, defined here only: TorchScript traced but not frozen (weights stay parameters)."""
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(path))
    return path


def _run_torchscript(path: Path, precision: str):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path)), precision


def test_a_new_export_format_is_one_entry_for_export_its_cli_and_the_benchmark(tmp_path, monkeypatch, capsys):
    from splitattn.bench import BenchConfig, inference_variants
    from splitattn.bench.candidates import inference_candidates
    from splitattn.cli import main
    from splitattn.export import FORMATS, FP32_TOLERANCE, ExportFormat, export_checked

    monkeypatch.setitem(FORMATS, "unfrozen", ExportFormat("unfrozen", "unfrozen TorchScript", ".ts",
                                                          _write_unfrozen_torchscript, _run_torchscript,
                                                          {"fp32": FP32_TOLERANCE}))
    model = splitattn.create_model("resnet18", num_classes=3)

    # export: written by the new writer, run by the new runner, checked like every format
    path, check = export_checked(model, tmp_path / "m.ts", "unfrozen", (3, 32, 32))
    assert path.is_file() and check.error < FP32_TOLERANCE and check.batch_sizes == (1, 3)
    assert any(True for _ in _run_torchscript(path, "fp32")[0].parameters()), "the new writer's file, not a frozen one"

    # its CLI: --format takes it, the default file name has its suffix, the library's refusals apply to it
    monkeypatch.chdir(tmp_path)
    assert main(["export", "resnet18", "--format", "unfrozen", "--img-size", "32", "--num-classes", "3"]) == 0
    assert (tmp_path / "resnet18.ts").is_file() and "wrote unfrozen fp32 resnet18.ts" in capsys.readouterr().out
    assert main(["export", "resnet18", "--format", "unfrozen", "--precision", "int8", "--img-size", "32",
                 "--calibration", str(tmp_path)]) == 2
    assert "--format unfrozen does not support --precision int8 (supported: onnx: fp32, int8; torchscript: fp32; " \
           "openvino: fp32, bf16, int8; unfrozen: fp32)" in capsys.readouterr().err

    # the benchmark: a candidate running the new format's file, in the library and on the command line
    assert "unfrozen" in inference_variants()
    [candidate] = inference_candidates(BenchConfig("resnet18", img_size=32), ("unfrozen",), references=False,
                                       workdir=tmp_path / "bench")
    assert candidate.label == "unfrozen" and candidate.precision == "float32"
    assert (tmp_path / "bench" / "resnet18-b1-fp32.ts").is_file() and candidate.fn().shape == (1, 1000)
    assert main(["bench", "resnet18", "--img-size", "32", "--repeats", "1", "--warmup", "0", "--variants", "unfrozen",
                 "--no-references", "--no-memory"]) == 0
    assert "| unfrozen |" in capsys.readouterr().out
