"""int8 post-training quantization through PyTorch's own PT2E flow, compiled by inductor for oneDNN.

The float model is deployed first (BatchNorms folded, training-only modules gone, standard convs),
captured with ``torch.export`` with a dynamic batch dimension, annotated by the x86 inductor
quantizer (static, per-channel symmetric int8 weights; per-tensor uint8 activations whose ranges
the calibration batches set), converted, and compiled by inductor with weight freezing, which
lowers every quantize -> conv -> dequantize pattern to one oneDNN int8 convolution (VNNI on CPUs
that have it) with the ReLU and residual add fused in.

What stays in float is decided per layer, and measured (``sensitivity``): by default the attention
MLPs the layers declare (``AttentionLayer.attention_mlp``), whose int8 version saves no time and
rounds the weights that scale whole feature maps. Softmax, sigmoid and the split weighted sum are
not int8 ops for this quantizer: they run in float between dequantized inputs, and by default the
feature map they read arrives in int8 (:mod:`.attention_inputs`).

In torch 2.14 the PT2E entry points live in ``torchao.quantization.pt2e`` (``pip install
'splitattn[quantize]'``); torchao is imported only here, when a model is quantized.
"""

from __future__ import annotations

import copy
import importlib
import platform
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..deploy import deploy
from ..deploy.aot import plain as _plain
from ..deploy.aot import quiet_compiler as _quiet_compiler
from ..deploy.cpu_features import native_int8
from ..deploy.frozen_model import FrozenModel
from ..deploy.inductor import FrozenInductorModel
from ..errors import MissingPackageError, SplitattnError
from ..layers import AttentionLayer

KEEP_FLOAT_CHOICES = ("attention", "none")
MAX_BATCH = 4096  # the dynamic batch dimension's upper bound in the exported graph


def _torchao_pt2e() -> tuple[Any, Any]:
    """(quantize_pt2e module, x86_inductor_quantizer module), or a RuntimeError saying how to get them."""
    try:
        with _quiet_compiler():  # torchao registers an Enum the way torch now deprecates, and says so
            pt2e = importlib.import_module("torchao.quantization.pt2e.quantize_pt2e")
            x86 = importlib.import_module("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")
    except ImportError as error:
        raise MissingPackageError("int8 quantization uses PyTorch's PT2E flow, which torch 2.14 keeps in torchao: "
                                  "pip install 'splitattn[quantize]' (torchao>=0.18)") from error
    return pt2e, x86


def check_quantizable(model: nn.Module, x86_only: bool = True) -> None:
    """A ValueError naming what is wrong when ``model`` cannot be quantized here: int8 serves float32
    CPU models, and through the x86 quantizer (``x86_only``) on x86 processors."""
    param = next(model.parameters(), None)
    if param is None:
        raise SplitattnError("the model has no parameters to quantize")
    if param.device.type != "cpu":
        raise SplitattnError(f"int8 quantization targets CPUs (oneDNN int8 kernels); the model is on {param.device}. "
                             "On a GPU use splitattn.deploy(model, dtype=torch.bfloat16) instead")
    if param.dtype != torch.float32:
        raise SplitattnError(f"quantize a float32 model (the weights' ranges are read in float32), not {param.dtype}")
    machine = platform.machine().lower()
    if x86_only and machine not in ("x86_64", "amd64", "i686", "x86"):
        raise SplitattnError(f"the x86 int8 quantizer needs an x86 CPU, this one is {machine}; "
                             "use splitattn.deploy(model) (float32) here")


def attention_mlp_names(model: nn.Module) -> list[str]:
    """The full names of the attention MLP modules that the model's attention layers declare."""
    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, AttentionLayer):
            names += [f"{prefix}.{child}" if prefix else child for child in module.attention_mlp]
    return names


def float_layers_of(model: nn.Module, keep_float: str | Sequence[str]) -> list[str]:
    """The module names ``keep_float`` asks to leave in float (see :func:`splitattn.quantize.quantize`)."""
    if isinstance(keep_float, str):
        if keep_float not in KEEP_FLOAT_CHOICES:
            raise SplitattnError(f"keep_float must be one of {KEEP_FLOAT_CHOICES} or a list of module names, "
                                 f"got {keep_float!r}")
        return attention_mlp_names(model) if keep_float == "attention" else []
    modules = dict(model.named_modules())
    unknown = [name for name in keep_float if name not in modules]
    if unknown:
        raise SplitattnError(f"keep_float names modules the model does not have: {unknown} "
                             f"(names as in model.named_modules(), e.g. 'layer1.0.conv2.fc1')")
    return list(keep_float)


class QuantizedModel(FrozenModel):
    """An int8 model: the converted PT2E graph, run compiled by inductor (or eagerly, as a reference).

    ``graph`` computes the int8 network with explicit quantize / dequantize steps in float, which
    is what the compiled int8 kernels compute up to their rounding; ``compiled=False`` runs it as
    is (slow, for checks). Takes and returns float32 like the float model. ``float_layers`` lists
    the modules left in float, ``int8_layers`` how many convs and linears run in int8,
    ``int8_attention_inputs`` how many of their outputs reach an attention in int8.
    """

    def __init__(self, graph: nn.Module, info: dict[str, Any], compiled: bool = True) -> None:
        super().__init__(info, "a quantized model", "quantize it")
        self.graph = graph
        self.compiled = compiled
        # built on first use (compiling takes a while), not a submodule: no duplicate parameters
        object.__setattr__(self, "_runner", None)
        self._compiled_shapes: set[tuple[int, ...]] = set()  # a new shape may recompile, and print

    @property
    def float_layers(self) -> list[str]:
        return list(self.info.get("float_layers", []))

    @property
    def int8_layers(self) -> int:
        return int(self.info.get("int8_layers", 0))

    @property
    def int8_attention_inputs(self) -> int:
        """How many feature maps reach the attention in int8 (see :mod:`.attention_inputs`)."""
        return int(self.info.get("int8_attention_inputs", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise SplitattnError(f"a quantized model takes float32 images (it quantizes them itself), got {x.dtype}")
        if not self.compiled:
            return self.graph(x)
        if self._runner is None:
            object.__setattr__(self, "_runner", FrozenInductorModel(self.graph))
        if x.shape in self._compiled_shapes:
            with torch.no_grad():
                return self._runner(x)
        with torch.no_grad(), _quiet_compiler():  # only where it compiles: the filters are process-wide
            out = self._runner(x)
        self._compiled_shapes.add(tuple(x.shape))
        return out


def count_int8_layers(graph: nn.Module) -> int:
    """Convs and linears whose weights the converted graph holds in int8 (one weight dequantize each)."""
    return sum(1 for node in graph.graph.nodes if node.op == "call_function"
               and "dequantize_per_channel" in str(node.target))


def quantize_pt2e(model: nn.Module, batches: Sequence[torch.Tensor], float_layers: Sequence[str],
                  compile: bool, int8_attention_inputs: bool = True) -> QuantizedModel:
    """The PT2E engine of :func:`splitattn.quantize.quantize` (which checks its arguments first).

    Args:
        model: the float32 CPU model.
        batches: the calibration batches (float32, at least one).
        float_layers: module names to leave in float.
        compile: run compiled by inductor, or the converted graph as is (the numerical reference).
        int8_attention_inputs: the convs feeding the attention write int8 (False: float32).
    """
    pt2e, x86 = _torchao_pt2e()
    from .attention_inputs import AttentionInputQuantizer  # imports torchao
    float_layers = list(float_layers)
    # The attention MLPs as matrix products while they stay in float (one GEMM each instead of a
    # oneDNN conv on a 1 x 1 map); as convs when any is quantized: the x86 quantizer leaves the
    # linears on pooled vectors unannotated (measured: keep_float="none" kept all 8 of a resnest14d
    # in float), and convs it quantizes.
    mlp = "matmul" if set(attention_mlp_names(model)) <= set(float_layers) else "conv"
    deployed = deploy(copy.deepcopy(model).eval(), fuse="none", memory_format="contiguous", attention_mlp=mlp)
    example = batches[0][:2] if batches[0].shape[0] >= 2 else torch.cat([batches[0]] * 2)
    # Without VNNI, oneDNN sums pairs of uint8 x int8 products in int16, which saturates on 8-bit
    # activations (measured: logits 30% off the reference graph); 7-bit activations cannot overflow.
    reduce_range = not native_int8()
    attention_layers = [name for name, module in deployed.named_modules() if isinstance(module, AttentionLayer)]
    quantizer = (AttentionInputQuantizer(attention_layers, attention_mlp_names(model)) if int8_attention_inputs
                 else x86.X86InductorQuantizer())
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    for name in float_layers:
        quantizer.set_module_name_qconfig(name, None)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.export's and torchao's notices about their own internals
        program = torch.export.export(deployed, (example,), dynamic_shapes=_dynamic_batch())
        prepared = pt2e.prepare_pt2e(program.module(), quantizer)
        for batch in batches:
            prepared(batch)
        converted = pt2e.convert_pt2e(prepared)
    info = {"architecture": model.pretrained_cfg.get("architecture") if hasattr(model, "pretrained_cfg") else None,
            "num_classes": getattr(model, "num_classes", 0), "in_chans": getattr(model, "in_chans", 3),
            "pretrained_cfg": _plain(getattr(model, "pretrained_cfg", {})), "float_layers": float_layers,
            "int8_layers": count_int8_layers(converted),
            "int8_attention_inputs": getattr(quantizer, "annotated_outputs", 0),
            "calibration_images": sum(b.shape[0] for b in batches),
            "reduce_range": reduce_range}
    return QuantizedModel(converted, info, compiled=compile)


def _dynamic_batch() -> tuple[dict[int, Any]]:
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)
