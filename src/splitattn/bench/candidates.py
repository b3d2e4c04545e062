"""The things a benchmark run compares: our model in its modes, and the references.

Each candidate is a zero-argument callable doing one unit of work (a forward pass, or a whole
training step) on a fixed batch, so the timer treats them all alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..deploy import deploy
from ..errors import SplitattnError
from ..factory import create_model
from .references import reference_builders

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Ours in each mode and precision, then the engines people deploy with, on the same weights.
INFERENCE_VARIANTS = ("eager", "deploy", "deploy+jit", "deploy+compile", "deploy+bf16", "int8", "onnx", "onnx+int8",
                      "openvino", "openvino+int8")
CALIBRATION_BATCHES = 4  # of the benchmark's batch size (random images: the ranges matter, not the accuracy)
TRAINING_VARIANTS = ("train", "train+channels_last", "train+ckpt_stage", "train+ckpt_block")


@dataclass
class Candidate:
    """One implementation under test: its label, its unit of work and the model behind it."""

    label: str
    fn: Callable[[], object]
    model: nn.Module | None = None
    observable_memory: bool = True  # False where allocations happen outside PyTorch's dispatcher
    precision: str = "float32"  # what its arithmetic runs in: its roof is that precision's


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: model, batch, resolution, precision, layout and device."""

    model: str
    batch_size: int = 1
    img_size: int = 224
    dtype: str = "float32"
    channels_last: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise SplitattnError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.img_size < 32:
            raise SplitattnError(f"img_size must be >= 32, got {self.img_size}")
        if self.dtype not in DTYPES:
            raise SplitattnError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def example(self, seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch_size, 3, self.img_size, self.img_size, generator=gen)
        return x.to(self.device, self.torch_dtype).contiguous(memory_format=self.memory_format)


def _prepare(model: nn.Module, config: BenchConfig, memory_format: torch.memory_format | None = None) -> nn.Module:
    return model.to(config.device, config.torch_dtype).to(memory_format=memory_format or config.memory_format)


def _forward(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def _engine_candidate(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor,
                      workdir: Path) -> Candidate:
    """onnxruntime or OpenVINO running our network, exported from the same weights (float32 CPU input).

    ``onnx`` and ``openvino`` are float32 files (OpenVINO compiled with its default precision for
    this CPU: bfloat16 where the CPU has it natively); ``+int8`` are their post-training
    quantized versions (QDQ for onnxruntime, NNCF for OpenVINO), calibrated as ours is.
    """
    from ..export import export_model

    _float32_cpu_only(config, variant)
    engine, _, precision = variant.partition("+")
    precision = precision or "fp32"
    suffix = {"onnx": ".onnx", "openvino": ".xml"}[engine]
    path = workdir / f"{config.model}-b{config.batch_size}-{precision}{suffix}"
    calibration = _calibration(config) if precision == "int8" else None
    path, _ = export_model(model.float().cpu(), path, engine, tuple(x.shape[1:]), check=False,
                           exporter="legacy" if engine == "onnx" else "dynamo", precision=precision,
                           calibration=calibration)
    contiguous = x.contiguous()
    if engine == "onnx":
        from ..export.onnx import onnx_session, run_onnx

        session = onnx_session(path)
        return Candidate(variant, lambda: run_onnx(session, contiguous), None, observable_memory=False,
                         precision="int8" if precision == "int8" else "float32")
    from ..deploy.cpu_features import native_bfloat16
    from ..export.openvino import openvino_runner

    # OpenVINO's default on a CPU with native bf16 is bf16 inference; asked for explicitly, so the
    # row says which it was. int8 files run their remaining float ops in float32.
    hint = precision if precision == "int8" else "bf16" if native_bfloat16() else "fp32"
    run, ran_at = openvino_runner(path, hint)
    return Candidate(variant, lambda: run(contiguous), None, observable_memory=False,
                     precision={"fp32": "float32", "bf16": "bfloat16"}.get(ran_at, ran_at))


def _float32_cpu_only(config: BenchConfig, variant: str) -> None:
    if config.device != "cpu" or config.dtype != "float32":
        raise SplitattnError(f"the {variant!r} candidate starts from the float32 CPU model (it sets its own "
                             "precision); "
                         f"run it with dtype float32 on cpu, not {config.dtype} on {config.device}")


def _calibration(config: BenchConfig) -> list[torch.Tensor]:
    return [config.example(seed=1 + i) for i in range(CALIBRATION_BATCHES)]


def inference_candidates(
    config: BenchConfig, variants: tuple[str, ...], references: bool = True, workdir: Path | None = None
) -> list[Candidate]:
    """Our model in each requested inference variant, then each installed reference (eval mode)."""
    unknown = set(variants) - set(INFERENCE_VARIANTS)
    if unknown:
        raise SplitattnError(f"unknown inference variants {sorted(unknown)}; expected some of {INFERENCE_VARIANTS}")
    x = config.example()
    model = create_model(config.model).eval()
    candidates = []
    for variant in variants:
        if variant == "eager":
            ours = _prepare(create_model(config.model).eval(), config)
            ours.load_state_dict(model.state_dict())
            candidates.append(Candidate("ours eager", _forward(ours, x), ours))
        elif variant in ("deploy", "deploy+jit", "deploy+compile"):
            compile_mode = {"deploy": None, "deploy+jit": "jit", "deploy+compile": "inductor"}[variant]
            base = _prepare(create_model(config.model).eval(), config)
            base.load_state_dict(model.state_dict())
            deployed = deploy(base, batch_size=config.batch_size, example_input=x, compile=compile_mode)
            observable = compile_mode is None or torch.device(config.device).type == "cuda"
            candidates.append(Candidate(f"ours {variant}", _forward(deployed, x), deployed, observable))
        elif variant == "deploy+bf16":
            _float32_cpu_only(config, variant)
            deployed = deploy(model, batch_size=config.batch_size, example_input=x, dtype=torch.bfloat16)
            candidates.append(Candidate(f"ours {variant}", _forward(deployed, x), deployed, precision="bfloat16"))
        elif variant == "int8":
            _float32_cpu_only(config, variant)
            from ..quantize import quantize

            quantized = quantize(model, _calibration(config))
            candidates.append(Candidate("ours int8", _forward(quantized, x), quantized, observable_memory=False,
                                        precision="int8"))
        else:
            workdir = workdir or Path(tempfile.mkdtemp(prefix="splitattn-bench-"))
            candidates.append(_engine_candidate(variant, model, config, x, workdir))
    if references:
        candidates += _reference_candidates(config, model.state_dict(), train=False, x=x)
    return candidates


def _reference_candidates(config: BenchConfig, state: dict, train: bool, x: torch.Tensor,
                          target: torch.Tensor | None = None) -> list[Candidate]:
    """Each installed reference as configured, plus timm in the other memory layout.

    timm in both layouts lets the table say how we compare with the faster of the two, not only
    with timm's default.
    """
    builders = reference_builders(config.model, state_dict=state)
    layouts = [(label, build, None) for label, build in builders.items()]
    if "timm" in builders:
        other = torch.contiguous_format if config.channels_last else torch.channels_last
        suffix = "contiguous" if config.channels_last else "channels_last"
        layouts.append((f"timm {suffix}", builders["timm"], other))
    candidates = []
    for label, build, layout in layouts:
        ref = _prepare(build().train(train), config, layout)
        inputs = x.contiguous(memory_format=layout) if layout is not None else x
        fn = _train_step(ref, inputs, target) if train else _forward(ref, inputs)
        candidates.append(Candidate(label, fn, ref))
    return candidates


def _train_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], object]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> object:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).float(), target)
        loss.backward()
        optimizer.step()
        return loss

    return step


def training_candidates(config: BenchConfig, variants: tuple[str, ...], references: bool = True) -> list[Candidate]:
    """One SGD step (forward, cross-entropy, backward, update) of ours per variant and of each reference."""
    unknown = set(variants) - set(TRAINING_VARIANTS)
    if unknown:
        raise SplitattnError(f"unknown training variants {sorted(unknown)}; expected some of {TRAINING_VARIANTS}")
    if config.batch_size < 2:
        raise SplitattnError(
            f"training needs batch_size >= 2 (got {config.batch_size}): the attention BatchNorms see one "
            "value per channel per image and cannot normalise a batch of one"
        )
    x = config.example()
    target = torch.randint(0, 1000, (config.batch_size,), generator=torch.Generator().manual_seed(0))
    target = target.to(config.device)
    state = create_model(config.model).state_dict()
    candidates = []
    for variant in variants:
        layout = torch.channels_last if variant == "train+channels_last" else None
        model = create_model(config.model)
        model.load_state_dict(state)
        model = _prepare(model.train(), config, layout)
        if variant.startswith("train+ckpt"):
            model.set_grad_checkpointing(True, granularity=variant.removeprefix("train+ckpt_"))
        inputs = x.contiguous(memory_format=layout) if layout is not None else x
        candidates.append(Candidate(f"ours {variant}", _train_step(model, inputs, target), model))
    if references:
        candidates += _reference_candidates(config, state, train=True, x=x, target=target)
    return candidates
