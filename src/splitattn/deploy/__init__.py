"""Deploy mode: an inference-only model that computes the same function as eval mode, faster.

``deploy(model)`` folds every BatchNorm into the conv before it (stem, blocks, shortcuts, the
bn0/bn1 inside split attention, the BNs of selective-kernel branches and their attention),
replaces DropBlock / DropPath / Dropout by identities, puts the weights in the memory format that
is faster for the expected batch size, and on CPU hands every conv to oneDNN with its weight
packed once and its ReLU (and the residual add at the end of a block) fused in. It can compile the
result instead. Outputs stay within 1e-4 relative of the eval-mode model; ``example_input`` makes
``deploy`` check that itself.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .fold import count_batchnorms, fold_batchnorms, fold_bn_into_conv
from .fuse import pack_and_fuse
from .inductor import FrozenInductorModel
from .memory_format import MEMORY_FORMATS, resolve_memory_format
from .packed_conv import PackedConv2d, onednn_unavailable_reason
from .strip import strip_training_modules

COMPILE_MODES = (None, "inductor", "jit")
FUSE_MODES = ("auto", "onednn", "none")
DEFAULT_IMG_SIZE = 224
DEPLOY_TOLERANCE = 1e-4

__all__ = [
    "COMPILE_MODES",
    "FUSE_MODES",
    "MEMORY_FORMATS",
    "PackedConv2d",
    "count_batchnorms",
    "deploy",
    "fold_batchnorms",
    "fold_bn_into_conv",
    "pack_and_fuse",
    "relative_error",
    "strip_training_modules",
]


def relative_error(ours: torch.Tensor | list, reference: torch.Tensor | list) -> float:
    """Worst relative error over the output, or over each map of a backbone's list of maps."""
    if isinstance(reference, (list, tuple)):
        return max(relative_error(o, r) for o, r in zip(ours, reference, strict=True))
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def _compile(model: nn.Module, mode: str | None, example: torch.Tensor | None) -> nn.Module:
    if mode is None:
        return model
    if mode == "inductor":
        return FrozenInductorModel(model)
    if example is None:
        raise ValueError("compile='jit' traces the model and needs an example input (example_input=...)")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and the input-check TracerWarning
        traced = torch.jit.trace(model, example, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


def _use_onednn(model: nn.Module, fuse: str, compile: str | None) -> bool:
    if fuse == "none":
        return False
    param = next(model.parameters())
    reason = onednn_unavailable_reason(param.device, param.dtype)
    if fuse == "onednn":
        if compile is not None:
            raise ValueError(
                f"fuse='onednn' is for eager mode: compilers cannot trace oneDNN's packed weights, and "
                f"compile={compile!r} packs and fuses by itself (use fuse='none' or 'auto')"
            )
        if reason is not None:
            raise ValueError(f"fuse='onednn' is not possible: {reason}")
        return True
    return compile is None and reason is None


def _default_example(model: nn.Module, batch_size: int) -> torch.Tensor:
    in_chans = getattr(model, "in_chans", None)
    if in_chans is None:
        raise ValueError(
            f"{type(model).__name__} does not say how many input channels it takes (no in_chans); "
            "pass example_input=... so deploy can pack its convs for that shape"
        )
    param = next(model.parameters())
    return torch.zeros(batch_size, in_chans, DEFAULT_IMG_SIZE, DEFAULT_IMG_SIZE, device=param.device, dtype=param.dtype)


def deploy(
    model: nn.Module,
    *,
    batch_size: int = 1,
    memory_format: str = "auto",
    example_input: torch.Tensor | None = None,
    compile: str | None = None,
    fuse: str = "auto",
    inplace: bool = False,
) -> nn.Module:
    """Return ``model`` in deploy mode (a copy unless ``inplace``).

    Args:
        batch_size: the batch size it will mostly run at; ``memory_format="auto"`` uses it to pick
            NCHW (one image on CPU) or channels-last (batches, and always on GPU).
        memory_format: ``"auto"``, ``"probe"`` (time both on ``example_input``), ``"channels_last"``
            or ``"contiguous"``.
        example_input: a representative batch; when given, the deployed outputs are checked
            against eval mode and a ValueError is raised beyond 1e-4 relative.
        compile: None (eager), ``"inductor"`` (``torch.compile`` with weight freezing, which packs
            and fuses the convs itself and compiles the rest) or ``"jit"`` (trace, freeze and
            ``torch.jit.optimize_for_inference``, which fuses conv + ReLU through oneDNN).
        fuse: ``"onednn"`` packs every conv's weight for oneDNN once and fuses the ReLUs and
            residual adds into the convs (CPU, float32 or bfloat16); ``"none"`` keeps standard
            ``nn.Conv2d`` modules, which exporters and compilers need; ``"auto"`` is ``"onednn"``
            when the model qualifies and ``compile`` is None, else ``"none"``. The packed
            weights are chosen for ``example_input``'s shape, or ``(batch_size, in_chans, 224, 224)``;
            other shapes still work, a little slower.
    """
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
    if fuse not in FUSE_MODES:
        raise ValueError(f"fuse must be one of {FUSE_MODES}, got {fuse!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    reference = None
    if example_input is not None:
        with torch.no_grad():
            reference = model.eval()(example_input)
    deployed = model if inplace else copy.deepcopy(model)
    deployed.eval()
    fold_batchnorms(deployed)
    strip_training_modules(deployed)
    for param in deployed.parameters():
        param.requires_grad_(False)
    fmt = resolve_memory_format(deployed, memory_format, batch_size, example_input)
    deployed.to(memory_format=fmt)
    deployed.deploy_memory_format = fmt  # type: ignore[assignment]
    if _use_onednn(deployed, fuse, compile):
        example = example_input if example_input is not None else _default_example(deployed, batch_size)
        deployed.deploy_fusions = pack_and_fuse(deployed, example.contiguous(memory_format=fmt))  # type: ignore[assignment]
    if reference is not None:
        with torch.no_grad():
            error = relative_error(deployed(example_input), reference)
        if error > DEPLOY_TOLERANCE:
            raise ValueError(f"deployed model differs from eval mode by {error:.2e} relative (> {DEPLOY_TOLERANCE})")
    example = None if example_input is None else example_input.contiguous(memory_format=fmt)
    return _compile(deployed, compile, example)
