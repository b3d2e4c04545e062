"""Deploy mode: BatchNorm folding and the deployed models of each family against eval mode."""

from __future__ import annotations

import copy
import time

import pytest
import torch
from torch import nn

import splitattn
from splitattn.deploy import (
    COMPILERS,
    Compiler,
    FixedBatch,
    PackedConv2d,
    count_batchnorms,
    deploy,
    deployment_of,
    fold_batchnorms,
    fold_bn_into_conv,
    relative_error,
)
from splitattn.deploy.memory_format import probe_memory_format
from splitattn.errors import OutputMismatchError
from splitattn.layers import DropBlock2d, DropPath

from .reference import randomize_

TOLERANCE = 1e-4


CONV_KINDS = [
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=1, bias=False),
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=1, bias=True),
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=2, dilation=2, groups=4, bias=False),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8, stride=2, bias=True),
    dict(in_channels=6, out_channels=12, kernel_size=1, groups=3, bias=False),
]
CONV_IDS = ["plain", "bias", "grouped-dilated", "depthwise-strided-bias", "grouped-1x1"]


@pytest.mark.parametrize("kwargs", CONV_KINDS, ids=CONV_IDS)
def test_fold_bn_into_conv_matches_conv_then_bn(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(**kwargs)
    bn = randomize_(nn.BatchNorm2d(kwargs["out_channels"], eps=1e-3))
    conv.eval()
    x = torch.randn(2, kwargs["in_channels"], 9, 9)
    fused = fold_bn_into_conv(conv, bn)
    assert fused.bias is not None and fused.groups == conv.groups and fused.dilation == conv.dilation
    torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_fold_rejects_mismatched_or_statless_layers():
    with pytest.raises(ValueError, match="4 features but the conv has 8"):
        fold_bn_into_conv(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="running statistics"):
        fold_bn_into_conv(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, track_running_stats=False))
    with pytest.raises(ValueError, match=r"expected an nn\.Conv2d"):
        fold_bn_into_conv(nn.Linear(3, 8), nn.BatchNorm2d(8))
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorms(splitattn.create_model("resnet18"))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("resnest14d", {}),                      # split attention: bn0 and bn1 (fc1) folded
        ("resnest14d", {"output_stride": 8}),    # dilated split-attention convs
        ("resnest14d", {"attn_args": {"radix": 1}, "avd_first": True}),  # radix 1: sigmoid gate
        ("seresnet18", {}),
        ("seresnext26d_32x4d", {}),              # SE bottlenecks: gate and shortcut add in one addcmul
        ("legacy_seresnet18", {"cardinality": 1}),  # original SENet layout: ceil pool, SE after ReLU
        ("skresnet18", {}),                      # SK branches (dilated) and SK attention BN
        ("resnet50d", {}),                       # plain bottlenecks, deep stem, avg-pool shortcut
    ],
)
def test_deploy_matches_eval_mode(name, kwargs):
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model(name, zero_init_last=False, drop_rate=0.2, drop_path_rate=0.1,
                                                  drop_block_rate=0.1, **kwargs))
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        expected = model(x)
        deployed = deploy(model, batch_size=2)
        assert count_batchnorms(deployed) == 0
        assert not any(isinstance(m, (DropBlock2d, DropPath, nn.Dropout)) for m in deployed.modules())
        assert relative_error(deployed(x), expected) < TOLERANCE
        assert relative_error(deployed(x[:1]), expected[:1]) < TOLERANCE
        other = torch.randn(3, 3, 40, 56)  # the convs were packed for (2, 3, 48, 48)
        assert relative_error(deployed(other), model(other)) < TOLERANCE
    assert count_batchnorms(model) > 0, "deploy() without inplace must leave the original model alone"
    assert not any(type(m) is nn.Conv2d for m in deployed.modules()), "every conv should be packed for oneDNN"
    assert deployment_of(deployed).fusions["relu_fused"] > 0


@pytest.mark.parametrize("kwargs", CONV_KINDS, ids=CONV_IDS)
def test_packed_conv_matches_conv_with_its_epilogue(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(**kwargs).eval()
    x = torch.randn(2, kwargs["in_channels"], 9, 11)
    with torch.no_grad():
        plain = PackedConv2d(conv, x.shape)
        torch.testing.assert_close(plain(x), conv(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(PackedConv2d(conv, x.shape, "relu")(x), torch.relu(conv(x)), rtol=1e-5, atol=1e-5)
        residual = torch.randn_like(conv(x))
        torch.testing.assert_close(plain.add_relu(x, residual), torch.relu(conv(x) + residual), rtol=1e-5, atol=1e-5)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(plain(x_cl), conv(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="already fuses one"):
        PackedConv2d(conv, x.shape, "relu").add_relu(x, residual)
    with pytest.raises(ValueError, match="activation must be one of"):
        PackedConv2d(conv, x.shape, "gelu")


def test_fused_blocks_keep_the_relu_after_the_residual_add():
    """A block's last ReLU follows the shortcut add: fusing it into conv3 alone would be wrong."""
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", zero_init_last=False))
    deployed = deploy(model)
    blocks = [m for m in deployed.modules() if type(m).__name__ == "FusedBottleneck"]
    assert len(blocks) == 4 and all(b.conv3.activation == "none" for b in blocks)
    assert all(b.conv1.activation == "relu" and b.conv2.conv.activation == "relu" for b in blocks)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(deployed(x), model(x)) < TOLERANCE


def test_packed_model_copies_and_refuses_to_change_device_or_dtype():
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", num_classes=4, zero_init_last=False))
    deployed = deploy(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        assert relative_error(copy.deepcopy(deployed)(x), expected) < TOLERANCE
        assert relative_error(deployed.to("cpu").float()(x), expected) < TOLERANCE  # no-op moves are fine
    with pytest.raises(ValueError, match=r"cannot move to cpu torch\.float16; move the original model"):
        deployed.half()
    with pytest.raises(RuntimeError, match=r"conv1\.0 holds a oneDNN-packed weight, which cannot be saved"):
        deployed.state_dict()
    assert "conv1.0.weight" in deploy(model, fuse="none").state_dict()


def test_fuse_option_and_its_errors():
    model = splitattn.create_model("resnest14d", num_classes=4).eval()
    plain = deploy(model, fuse="none")
    assert any(type(m) is nn.Conv2d for m in plain.modules()) and not deployment_of(plain).fusions
    with pytest.raises(ValueError, match="fuse must be one of"):
        deploy(model, fuse="mkldnn")
    with pytest.raises(ValueError, match="compilers cannot trace oneDNN's packed weights"):
        deploy(model, fuse="onednn", compile="jit", example_input=torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"not possible: oneDNN packing supports .* not torch\.float64"):
        deploy(model.double(), fuse="onednn")
    assert not deployment_of(deploy(model.double())).fusions, "auto falls back to standard convs"
    with pytest.raises(ValueError, match="pass example_input"):
        deploy(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval())


def test_deploy_in_place_converts_the_model_and_checks_itself():
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", num_classes=5, zero_init_last=False))
    x = torch.randn(1, 3, 32, 32)
    expected = model(x).detach()
    assert deploy(model, example_input=x, inplace=True) is model
    assert count_batchnorms(model) == 0
    assert not any(p.requires_grad for p in model.parameters())
    assert relative_error(model(x), expected) < TOLERANCE


def test_memory_format_choice():
    model = splitattn.create_model("resnest14d", num_classes=4).eval()
    assert deployment_of(deploy(model, batch_size=1)).memory_format == torch.contiguous_format
    assert deployment_of(deploy(model, batch_size=16)).memory_format == torch.channels_last
    assert deployment_of(deploy(model, memory_format="contiguous", batch_size=16)).memory_format == \
        torch.contiguous_format
    x = torch.randn(1, 3, 32, 32)
    probed = deploy(model, memory_format="probe", example_input=x)  # which layout it picks: see the next test
    with torch.no_grad():
        assert relative_error(probed(x), model(x)) < TOLERANCE
    with pytest.raises(ValueError, match="memory_format must be one of"):
        deploy(model, memory_format="nhwc")
    with pytest.raises(ValueError, match="needs an example input"):
        deploy(model, memory_format="probe")
    with pytest.raises(ValueError, match="compile must be one of"):
        deploy(model, compile="tensorrt")


def test_deploy_with_jit_freezing_matches_eval_mode():
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", zero_init_last=False))
    x = torch.randn(2, 3, 32, 32)
    expected = model(x).detach()
    compiled = deploy(model, example_input=x, compile="jit")
    with torch.no_grad():
        assert relative_error(compiled(x), expected) < TOLERANCE


def test_deploy_backbone_returns_the_same_feature_maps():
    torch.manual_seed(0)
    backbone = randomize_(splitattn.create_model("skresnet18", features_only=True, zero_init_last=False))
    x = torch.randn(1, 3, 32, 32)
    deployed = deploy(backbone, example_input=x)  # raises beyond 1e-4 on any map
    with torch.no_grad():
        assert [m.shape for m in deployed(x)] == [m.shape for m in backbone(x)]
        other = torch.randn(2, 3, 40, 56)
        for ours, expected in zip(deployed(other), backbone(other), strict=True):
            assert relative_error(ours, expected) < TOLERANCE


def test_deploy_with_torch_compile_freezes_packs_and_matches_eval_mode():
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", zero_init_last=False))
    x = torch.randn(1, 3, 32, 32)
    counters.clear()
    compiled = deploy(model, example_input=x, compile="inductor")  # compiles: deploy checks the compiled model
    with torch.no_grad():
        assert relative_error(compiled(x), model(x)) < TOLERANCE
    # inductor packed convs for oneDNN itself, so freezing was really on while it compiled (without
    # it, inductor packs none: the README explains why options={"freezing": True} alone is not enough)
    assert counters["inductor"]["mkldnn_conv_weight_pack_matcher_count"] > 0
    assert deployment_of(compiled).memory_format == torch.contiguous_format
    assert deployment_of(compiled).compile == "inductor" and deployment_of(compiled).checked_error < TOLERANCE
    assert list(compiled.state_dict()) == [f"model.{key}" for key in compiled.model.state_dict()]


def test_se_bottlenecks_gate_and_add_in_one_step():
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("seresnext26d_32x4d", zero_init_last=False))
    deployed = deploy(model)
    fused = [m for m in deployed.modules() if type(m).__name__ == "FusedGatedBottleneck"]
    assert len(fused) == deployment_of(deployed).fusions["residual_fused"] == 8
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(deployed(x), model(x)) < TOLERANCE


class _SlowInOneLayout(nn.Module):
    """A model that takes 20 ms more in one memory layout than in the other."""

    def __init__(self, slow: torch.memory_format) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.slow = slow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=self.slow):
            time.sleep(0.02)
        return self.conv(x)


@pytest.mark.parametrize("slow, chosen", [(torch.contiguous_format, torch.channels_last),
                                          (torch.channels_last, torch.contiguous_format)])
def test_memory_format_probe_picks_the_faster_layout(slow, chosen):
    x = torch.randn(2, 4, 8, 8)
    assert probe_memory_format(_SlowInOneLayout(slow).eval(), x) == chosen


def test_fixed_batch_pads_a_smaller_batch_and_gives_each_image_its_own_output():
    model = deploy(randomize_(splitattn.create_model("seresnet18", num_classes=10)).eval())
    x = torch.randn(5, 3, 32, 32)
    seen: list[int] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    fixed = FixedBatch(model, 4)
    with torch.no_grad():
        torch.testing.assert_close(fixed(x[:3]), model(x[:3]), rtol=1e-4, atol=1e-5)
        assert fixed(x).shape == (5, 10)  # a larger batch runs as it is
    assert seen == [4, 3, 5]  # padded to 4; then the unpadded reference; then 5
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        FixedBatch(model, 0)


class _OffByOne(nn.Module):
    """What a broken compiler might hand back: the model, with every output shifted."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + 1.0


def test_the_output_check_runs_on_the_compiled_model(monkeypatch):
    """A compile step that changes the numbers is caught: deploy checks what it returns, not what it compiled."""
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", num_classes=4, zero_init_last=False)).eval()
    x = torch.randn(2, 3, 32, 32)
    monkeypatch.setitem(COMPILERS, "jit", Compiler("jit", lambda m, _example, _dtype: _OffByOne(m), needs_example=True))
    with pytest.raises(OutputMismatchError, match=r"deployed model differs from eval mode by .* relative \(> 0.0001"):
        deploy(model, example_input=x, compile="jit")
    monkeypatch.setitem(COMPILERS, "jit", Compiler("jit", lambda m, _example, _dtype: m, needs_example=True))
    good = deploy(model, example_input=x, compile="jit")
    assert deployment_of(good).checked_error < TOLERANCE and deployment_of(good).compile == "jit"


def test_deploy_leaves_the_callers_model_as_it_was():
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("seresnet18", num_classes=4, zero_init_last=False, drop_rate=0.2))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    deployed = deploy(model, example_input=x)
    assert all(m.training for m in model.modules()), "deploy switched the caller's model to eval mode"
    assert all(p.requires_grad for p in model.parameters())
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), "parameters or BN statistics changed"
    assert count_batchnorms(model) == count_batchnorms(splitattn.create_model("seresnet18", num_classes=4))
    with torch.no_grad():
        assert relative_error(deployed(x), model.eval()(x)) < TOLERANCE  # and it deployed eval mode, not train mode


def _tiny_net() -> nn.Module:
    """Small enough that each inductor compile takes a few seconds; the setting under test is the wrapper's."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()


def test_inductor_compiles_one_static_graph_per_shape():
    """Shapes 1, 2, 3, then 1 again: three static graphs. With dynamo's automatic dynamic shapes the
    second shape would make the batch symbolic and the third reuse that graph (weights then repacked
    at run time); the count tells the two apart, through the counter the benchmark's check reads."""
    from splitattn.deploy.graph_count import counting_graphs
    from splitattn.deploy.inductor import FrozenInductorModel

    net = _tiny_net()
    compiled = FrozenInductorModel(net)
    counts = []
    with torch.no_grad():
        for batch in (1, 2, 3, 1, 2):
            x = torch.randn(batch, 3, 8, 8)
            with counting_graphs() as graphs:
                out = compiled(x)
            counts.append(graphs.count)
            torch.testing.assert_close(out, net(x), rtol=1e-4, atol=1e-5)
    assert counts == [1, 1, 1, 0, 0]


def test_benchmark_check_wants_one_graph_per_configuration():
    from splitattn.bench.compile_check import checked_compiled
    from splitattn.deploy.inductor import FrozenInductorModel

    x = torch.randn(5, 3, 8, 8)
    compiled = FrozenInductorModel(_tiny_net())
    with torch.no_grad():
        checked_compiled(lambda: lambda: compiled(x), "tiny+compile")  # one graph, then none
        with pytest.raises(ValueError, match=r"eager: its build and first call compiled 0 graph\(s\) and its "
                                             r"second 0"):
            checked_compiled(lambda: lambda: _tiny_net()(x), "eager")  # not compiled at all


ATTENTION_FAMILIES = ["resnest50", "resnest14d", "resnest50d_4s2x40d", "seresnet18", "legacy_seresnet18",
                      "skresnet18", "skresnext50_32x4d"]  # official and timm-d ResNeSt (4s2x40d: grouped fc), SE, SK


def _convs_on_one_by_one_maps(model: nn.Module, x: torch.Tensor) -> int:
    """Conv calls (plain or oneDNN-packed) during a forward whose input map is 1 x 1."""
    calls = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[-2:] == (1, 1)))
             for m in model.modules() if isinstance(m, (nn.Conv2d, PackedConv2d))]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return sum(calls)


@pytest.mark.parametrize("name", ATTENTION_FAMILIES)
def test_attention_mlps_become_matrix_products_with_eval_modes_outputs(name):
    from splitattn.deploy import DEPLOY_TOLERANCE, PooledLinear
    from splitattn.layers import AttentionLayer, Gate

    torch.manual_seed(0)
    model = randomize_(splitattn.create_model(name, num_classes=10, zero_init_last=False)).eval()
    x = torch.randn(2, 3, 64, 64)  # the last stage's maps are 2 x 2: only the attention pools to 1 x 1
    deployed = deploy(model, example_input=x)  # raises beyond DEPLOY_TOLERANCE of eval mode
    mlps = sum(len(m.attention_mlp) for m in model.modules() if isinstance(m, AttentionLayer))
    assert mlps > 0 and deployment_of(deployed).attention_matmuls == mlps
    assert sum(isinstance(m, PooledLinear) for m in deployed.modules()) == mlps
    assert _convs_on_one_by_one_maps(model, x) == mlps  # eval mode: every MLP layer a conv on a 1 x 1 map
    assert _convs_on_one_by_one_maps(deployed, x) == 0
    with torch.no_grad():
        assert relative_error(deployed(x[:1]), model(x[:1])) < DEPLOY_TOLERANCE
    kept = deploy(model, attention_mlp="conv", fuse="none")
    assert _convs_on_one_by_one_maps(kept, x) == mlps and deployment_of(kept).attention_matmuls == 0
    # OpenVINO's form: a gate's (squeeze-excitation) MLP keeps its convs, every other one is a matrix product
    gates = sum(len(m.attention_mlp) for m in model.modules() if isinstance(m, Gate))
    mixed = deploy(model, attention_mlp="matmul-except-gates", example_input=x)
    assert _convs_on_one_by_one_maps(mixed, x) == gates and deployment_of(mixed).attention_matmuls == mlps - gates
    with torch.no_grad():
        assert relative_error(mixed(x[:1]), model(x[:1])) < DEPLOY_TOLERANCE
    with pytest.raises(ValueError, match=r"attention_mlp must be one of .*Did you mean 'matmul'"):
        deploy(model, attention_mlp="matmull")


def test_many_compiled_models_of_one_class_each_compile():
    """Dynamo's recompile limit counts every model of a class (they share ``forward``); past it, it would
    run the next ones eagerly. Our compiles raise the limit: with dynamo's own at 2, a third still compiles."""
    import torch._dynamo.config as dynamo_config

    from splitattn.deploy.graph_count import counting_graphs
    from splitattn.deploy.inductor import FrozenInductorModel

    x = torch.randn(2, 3, 8, 8)
    counts = []
    # The config's own patch, not monkeypatch: pytest's undo deletes a module attribute it did not
    # find in the module's __dict__, and torch's config then hides the setting for the whole process.
    with torch.no_grad(), dynamo_config.patch(recompile_limit=2):
        for seed in range(3):
            torch.manual_seed(seed)
            net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
            with counting_graphs() as graphs:
                out = FrozenInductorModel(net)(x)
            counts.append(graphs.count)
            torch.testing.assert_close(out, net(x), rtol=1e-4, atol=1e-5)  # each with its own weights
    assert counts == [1, 1, 1]
