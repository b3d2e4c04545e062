"""Summaries and the zoo table: shapes through a split-attention block, and counts that match the papers."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.inspect import count, parse_input_size, summarize, summarize_model


def _meta_model(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def _block_model() -> torch.nn.Module:
    """ResNeSt-14 whose first block has a 64-channel, radix-2, cardinality-2 split-attention conv."""
    return _meta_model("resnest14d", cardinality=2, base_width=32)


def test_summary_totals_are_the_parameter_count_and_the_flop_counters_total():
    model = _meta_model("resnest14d")
    summary = summarize(model, (3, 64, 64))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64, device="meta"))
    assert summary.total_params == sum(p.numel() for p in model.parameters()) == 10_611_688
    assert summary.total_macs == counter.get_total_flops() // 2
    leaves = summary.leaf_rows()
    assert sum(row.params for row in leaves) == summary.total_params
    assert sum(row.macs for row in leaves) == summary.total_macs
    stages = [row for row in summary.rows if row.depth == 1]
    assert sum(row.params for row in stages) == summary.total_params


def test_split_attention_block_rows_show_each_step_with_its_shape():
    summary = summarize(_block_model(), (3, 64, 64))
    block = [row for row in summary.rows if row.path.startswith("layer1.0.conv2.")]

    def one(note: str):
        rows = [row for row in block if note in row.note]
        assert len(rows) == 1, (note, [(r.path, r.note) for r in block])
        return rows[0]

    conv = one("grouped conv")
    assert conv.path == "layer1.0.conv2.conv" and conv.shape == (128, 16, 16)
    assert "radix 2 x cardinality 2" in conv.note
    assert one("split:").shape == (2, 64, 16, 16)
    pooled = one("pooled sum")
    assert pooled.shape == (64,)
    assert one("reduce").path.endswith(".fc1") and one("reduce").shape == (32, 1, 1)
    assert one("expand").path.endswith(".fc2") and one("expand").shape == (128, 1, 1)
    softmax = one("r-softmax")
    assert torch.Size(softmax.shape).numel() == 128 and "2 cardinal group" in softmax.note
    assert one("weighted sum").shape == (64, 16, 16)
    order = [block.index(one(n)) for n in ("grouped conv", "pooled sum", "reduce", "expand", "r-softmax",
                                           "weighted sum")]
    assert order == sorted(order)
    # The layer's own row: 64 channels in, 64 out, and it owns the params of its rows.
    layer = next(row for row in summary.rows if row.path == "layer1.0.conv2")
    assert layer.shape == (64, 16, 16) and layer.params == sum(r.params for r in block)
    assert next(row for row in summary.rows if row.path == "layer1.0.act1").shape == (64, 16, 16)


def test_se_and_sk_layers_show_their_steps():
    se = summarize_model("seresnet18", (3, 64, 64))
    assert se.find("excitation gate") and se.find("scale channels") and se.find("residual add")
    sk = summarize_model("skresnext50_32x4d", (3, 64, 64))
    assert sk.find("softmax across branches") and sk.find("select: weighted sum of branches")
    assert sk.untraced == []


def test_summary_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = create_model("resnest14d", num_classes=10).train()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model.eval()(x)
    model.train()
    summarize(model, (3, 32, 32))
    assert model.training
    assert not any("forward" in vars(m) for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        assert torch.equal(model.eval()(x), before)


def test_summary_command_prints_the_table_with_steps(capsys):
    assert cli_main(["summary", "resnest14d", "--input", "3x64x64", "--depth", "4"]) == 0
    out = capsys.readouterr().out
    for text in ("layer1.0.conv2.conv", "r-softmax", "weighted sum of the splits", "Total params:     10,611,688"):
        assert text in out
    assert cli_main(["summary", "resnest14d", "--input", "3x64x64", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "layer1.0 " in out and "layer1.0.conv2" not in out and "--depth 4" in out
    assert cli_main(["summary", "resnest14d", "--input", "3x64x64", "--depth", "all", "--only", "layer1.0.conv2"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    assert rows[0].startswith("layer1.0.conv2 ") and all("layer1.0.conv2" in r for r in rows[:14])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "resnest14d", "--input", "3x224"], "CxHxW"),
        (["summary", "resnest14d", "--input", "3x0x224"], "CxHxW"),
        (["summary", "resnest51"], "unknown model 'resnest51'"),
        (["zoo", "nothing*"], "no zoo model matches 'nothing*'"),
    ],
)
def test_bad_arguments_get_a_clear_error(argv, message, capsys):
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err


def test_parse_input_size():
    assert parse_input_size("3x224x224") == (3, 224, 224)
    assert parse_input_size(" 1X32x48 ") == (1, 32, 48)


# Papers' tables: ResNeSt (Table 7/8), SENet (Table 2), SKNet (Table 2). GMACs are what the papers call FLOPs.
PAPER = [
    ("resnest50", 27.5, 5.39),
    ("seresnet50", 28.1, None),
    ("legacy_seresnet50", 28.1, 3.87),
    ("skresnext50_32x4d", 27.5, 4.47),
    ("legacy_senet154", 115.1, 20.7),
]


@pytest.mark.parametrize(("name", "params_m", "gmacs"), PAPER)
def test_zoo_numbers_agree_with_the_papers(name, params_m, gmacs):
    params, macs = count(name)
    assert params / 1e6 == pytest.approx(params_m, rel=0.01)
    if gmacs is not None:
        assert macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_zoo_command_formats(capsys):
    assert cli_main(["zoo", "resnest50", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == "resnest50" and row["input_size"] == "3x224x224" and row["crop_pct"] == 0.875
    assert row["paper_top1"] == 81.13 and row["params"] == 27_483_240 and row["gmacs"] == pytest.approx(5.37)
    assert row["weights"] == "in1k" and row["top1"] == 81.03  # the official release's own measurement
    assert cli_main(["zoo", "resnest50*", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["model"] for r in rows} >= {"resnest50", "resnest50d", "resnest50_fast_2s2x40d"}
    assert cli_main(["zoo", "skresnext50_32x4d"]) == 0
    table = capsys.readouterr().out.splitlines()
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert table[0].startswith("| model") and cells[:4] == ["skresnext50_32x4d", "sknet", "27.48", "4.46"]
    assert cells[-3:] == ["ra_in1k", "80.17", "79.21"]  # default weights, their top-1, the paper's
