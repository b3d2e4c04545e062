"""ONNX (checked with onnxruntime) and TorchScript export of one model per family, dynamic batch."""

from __future__ import annotations

import pytest
import torch

import splitattn
from splitattn.cli import main
from splitattn.export import check_onnx, export_model

from .reference import randomize_

pytest.importorskip("onnx", reason="ONNX export tests need pip install -e .[export]")
pytest.importorskip("onnxruntime", reason="ONNX export tests need pip install -e .[export]")

TOLERANCE = 1e-4


@pytest.mark.parametrize(
    "name, exporter", [("resnest14d", "dynamo"), ("seresnet18", "legacy"), ("skresnet18", "legacy")]
)
def test_onnx_export_matches_eval_mode_at_other_batch_sizes(tmp_path, name, exporter):
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model(name, num_classes=7, zero_init_last=False))
    path, error = export_model(model, tmp_path / f"{name}.onnx", "onnx", (3, 32, 32), exporter=exporter)
    assert path.exists() and error < TOLERANCE  # export_model checked batch sizes 1 and 3
    assert check_onnx(path, model, [torch.randn(5, 3, 32, 32)]) < TOLERANCE  # yet another batch size


def test_torchscript_export_matches_eval_mode(tmp_path):
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("resnest14d", num_classes=3, zero_init_last=False))
    path, error = export_model(model, tmp_path / "m.pt", "torchscript", (3, 32, 32))
    assert error < TOLERANCE
    loaded = torch.jit.load(str(path))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-4)


def test_export_leaves_the_callers_model_in_its_mode(tmp_path):
    torch.manual_seed(0)
    model = randomize_(splitattn.create_model("seresnet18", num_classes=3, zero_init_last=False)).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path, error = export_model(model, tmp_path / "m.pt", "torchscript", (3, 32, 32))
    assert all(m.training for m in model.modules()), "export switched the caller's model to eval mode"
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # the file computes eval mode, and the check compared it with eval mode
        torch.testing.assert_close(torch.jit.load(str(path))(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    assert error < TOLERANCE


def test_export_cli_and_errors(tmp_path, capsys):
    out = tmp_path / "sk.onnx"
    assert main(["export", "skresnet18", "--img-size", "32", "--num-classes", "4", "-o", str(out),
                 "--exporter", "legacy"]) == 0
    assert out.exists() and "max relative error" in capsys.readouterr().out
    assert main(["export", "resnest14d", "--img-size", "8", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--img-size must be >= 32" in capsys.readouterr().err
    model = splitattn.create_model("resnet18")
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(model, tmp_path / "m.tflite", "tflite", (3, 32, 32))
    with pytest.raises(ValueError, match="input_size must be"):
        export_model(model, tmp_path / "m.onnx", "onnx", (32, 32))
