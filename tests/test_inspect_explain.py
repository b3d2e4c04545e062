"""Attention weights through hooks, Grad-CAM and the explain command's pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from splitattn import SplitAttnConv2d, create_model
from splitattn.cli import main as cli_main
from splitattn.data import eval_transform, load_rgb
from splitattn.inspect.attention import attention_weights
from splitattn.inspect.gradcam import grad_cam
from splitattn.inspect.images import open_image, prepare_image
from splitattn.inspect.plots import ATTENTION_PX
from splitattn.weights import save_state_dict


@pytest.fixture
def image_file(tmp_path):
    """A 150 x 100 RGB photo-like file (smooth gradients and a bright square)."""
    y, x = np.mgrid[0:100, 0:150]
    pixels = np.stack([x * 255 / 150, y * 255 / 100, np.full_like(x, 80)], axis=-1).astype(np.uint8)
    pixels[30:60, 40:80] = 255
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("radix", [2, 4])
def test_radix_weights_sum_to_one_across_splits_in_every_cardinal_group(radix):
    torch.manual_seed(0)
    model = create_model("resnest14d", cardinality=2, base_width=32, attn_args={"radix": radix})
    model.train()  # attention_weights switches to eval and back
    for module in model.modules():  # non-trivial attention: random BN statistics and gains
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.weight.data.uniform_(0.5, 1.5)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.eval()(images)
    model.train()
    records = attention_weights(model, images)
    assert model.training
    layers = [name for name, m in model.named_modules() if isinstance(m, SplitAttnConv2d)]
    assert [r.name for r in records] == layers and [r.stage for r in records] == [1, 2, 3, 4]
    for record, planes in zip(records, (64, 128, 256, 512), strict=True):
        assert record.kind == "splat" and record.weights.shape == (2, radix, 2, planes // 2)
        torch.testing.assert_close(record.weights.sum(1), torch.ones(2, 2, planes // 2))
        assert record.weights.std() > 0  # the splits are not all chosen equally
    with torch.no_grad():
        assert torch.equal(model.eval()(images), expected)  # the hooks are gone, outputs unchanged


def test_se_gates_and_sk_branch_weights():
    torch.manual_seed(0)
    images = torch.randn(1, 3, 32, 32)
    model = create_model("seresnet18").eval()
    seen = {}  # what each SE layer really multiplied: its input and its output

    def keep(name):
        def hook(_module, args, out) -> None:
            seen[name] = (args[0].clone(), out.clone())  # the block adds the shortcut into out in place
        return hook

    hooks = [m.register_forward_hook(keep(name)) for name, m in model.named_modules() if name.endswith(".se")]
    se = attention_weights(model, images)
    for hook in hooks:
        hook.remove()
    assert len(se) == 8 and all(r.kind == "se" and r.choices == 1 for r in se)
    assert se[0].weights.shape == (1, 1, 1, 64)
    for record in se:  # the recorded gates are exactly the gates applied
        given, applied = seen[record.name]
        torch.testing.assert_close(applied, given * record.weights.view(1, -1, 1, 1))
    sk = attention_weights(create_model("skresnet18"), images)
    assert len(sk) == 8 and all(r.kind == "sk" and r.choices == 2 for r in sk)
    for record in sk:
        torch.testing.assert_close(record.weights.sum(1), torch.ones_like(record.weights[:, 0]))


def test_grad_cam_is_a_normalised_map_at_input_resolution():
    torch.manual_seed(0)
    model = create_model("resnest14d", num_classes=10)
    image = torch.randn(1, 3, 64, 48)
    cam = grad_cam(model, image)
    assert cam.heatmap.shape == (64, 48)
    assert cam.heatmap.min() >= 0 and cam.heatmap.max() <= 1
    assert cam.heatmap.max() == pytest.approx(1.0) and cam.heatmap.std() > 0, "normalised, not blank"
    torch.testing.assert_close(cam.probabilities, model.eval()(image).softmax(-1)[0])
    assert cam.class_index == int(model.eval()(image).argmax())
    assert grad_cam(model, image, class_index=3).class_index == 3
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, image, class_index=10)


def test_explain_sees_the_image_as_eval_and_predict_do(image_file):
    """Same decoding and crop as evaluation, so the heat map explains the prediction users get."""
    cfg = create_model("resnest14d").pretrained_cfg
    prepared = prepare_image(open_image(image_file), cfg)
    expected = eval_transform(224, cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"])(load_rgb(image_file))
    torch.testing.assert_close(prepared.tensor, expected.unsqueeze(0))
    assert prepared.display.shape == (224, 224, 3) and prepared.display.dtype == np.uint8


def _check_pngs(out_dir, stages=(1, 2, 3, 4), size=(224, 224)):
    for stage in stages:
        with Image.open(out_dir / f"attention_layer{stage}.png") as picture:
            assert picture.format == "PNG" and picture.size == ATTENTION_PX
            picture.verify()
    with Image.open(out_dir / "gradcam.png") as heat:
        assert heat.format == "PNG" and heat.size == size and heat.mode == "RGB"
        heat.verify()


def test_explain_command_writes_pictures(image_file, tmp_path, capsys):
    out_dir = tmp_path / "pictures"
    assert cli_main(["explain", str(image_file), "--model", "resnest14d", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "gradcam.png" in printed and "top classes:" in printed
    _check_pngs(out_dir)


def test_explain_with_a_checkpoint(image_file, tmp_path, capsys):
    torch.manual_seed(1)
    model = create_model("skresnet18", num_classes=5)
    checkpoint = save_state_dict(model.state_dict(), tmp_path / "sk.safetensors")
    out_dir = tmp_path / "sk"
    argv = ["explain", str(image_file), "--model", "skresnet18", "--checkpoint", str(checkpoint),
            "--out", str(out_dir)]  # a bare weights file: --model names it, its 5 classes come from the file
    assert cli_main(argv) == 0
    _check_pngs(out_dir)
    assert "top classes:" in capsys.readouterr().out


@pytest.mark.parametrize(("content", "message"), [(None, "does not exist"), (b"not an image", "cannot read")])
def test_explain_rejects_a_bad_image(tmp_path, capsys, content, message):
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    assert cli_main(["explain", str(path), "--model", "resnest14d", "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
