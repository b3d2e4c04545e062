"""Training configuration: one dataclass, recipe presets, YAML files and ``key=value`` overrides.

Every run prints and saves the config it actually used, so a result can always be reproduced.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..models.registry import input_cfg


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults train the built-in digits set in a few minutes on a CPU."""

    # data
    data: str = "digits"  # "digits" (built in) or a directory with train/ and val/ class folders
    train_dir: str | None = None  # override the train/ sub-directory
    val_dir: str | None = None
    image_size: int = 32
    crop_pct: float | None = 1.0  # eval resize = image_size / crop_pct; None: the model's default
    interpolation: str = "bilinear"
    workers: int = 0
    # model
    model: str = "resnest14d"
    pretrained: str | None = None  # path/URL, or "published" for the registered ImageNet weights
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    drop_block_rate: float = 0.0  # ramped linearly from 0 over training
    zero_init_last: bool = True
    # optimisation
    epochs: int = 8
    batch_size: int = 64  # per process
    lr: float | None = None  # None: base_lr * global batch / 256
    base_lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    no_decay_bn_bias: bool = True
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    auto_augment: bool = False
    rand_augment: bool = False
    random_resized_crop: bool = False  # else pad-and-crop, which suits small images
    hflip: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    # run
    output: str = "runs/train"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = False
    grad_checkpointing: bool = False
    channels_last: bool = False
    sync_bn: bool = False
    resume: bool = False
    progress: bool = True
    log: str = "jsonl"  # "tensorboard": TensorBoard event files too, in RUN_DIR/tensorboard
    max_steps_per_epoch: int | None = None  # for smoke tests
    extra: dict[str, Any] = field(default_factory=dict)

    def scaled_lr(self, world_size: int) -> float:
        """The paper's linear scaling rule: lr = 0.1 x global batch / 256, unless set explicitly."""
        return self.lr if self.lr is not None else self.base_lr * self.batch_size * world_size / 256

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def imagenet_recipe(model: str) -> dict[str, Any]:
    """The ResNeSt paper's ImageNet recipe for ``model`` (Section 5 / Appendix of the paper).

    Crop size and interpolation come from the model's pretrained config, which records what its
    published weights were trained with (for ResNeSt: 224 / 256 / 320 / 416 px for depth 50 / 101 /
    200 / 269); the paper adds DropBlock for the two large crops.
    """
    cfg = input_cfg(model)
    size = cfg.input_size[-1]
    return dict(
        model=model,
        image_size=size,
        epochs=270,
        batch_size=64,
        base_lr=0.1,
        lr=None,
        momentum=0.9,
        weight_decay=1e-4,
        no_decay_bn_bias=True,
        warmup_epochs=5,
        label_smoothing=0.1,
        mixup=0.2,
        auto_augment=True,
        random_resized_crop=True,
        hflip=True,
        drop_rate=0.2,
        drop_block_rate=0.1 if size >= 320 else 0.0,
        zero_init_last=True,
        interpolation=cfg.interpolation,
        crop_pct=None,
        workers=8,
    )


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
PRESETS = {"digits": lambda model: {}, "imagenet": imagenet_recipe}


def _coerce(name: str, raw: str, current: Any) -> Any:
    """Parse a command-line ``value`` with YAML, then check it against the field's current type."""
    value = yaml.safe_load(raw) if isinstance(raw, str) else raw
    if value is None:
        if "None" not in _FIELD_TYPES[name]:
            raise ValueError(f"config {name} cannot be empty (null)")
        return None
    if current is None:  # an optional field: take the type its annotation names
        kind = _FIELD_TYPES[name]
        current = 0 if kind.startswith("int") else 0.0 if kind.startswith("float") else None
        if current is None:
            return value if not kind.startswith("str") else str(value)
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ValueError(f"config {name} expects true/false, got {raw!r}")
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"config {name} expects a number, got {raw!r}")
        return type(current)(value) if isinstance(current, float) or float(value).is_integer() else value
    return value


def build_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults, then the preset, then the YAML file, then explicit overrides (later wins)."""
    config = TrainConfig()
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    layers: list[tuple[str, dict[str, Any]]] = []
    overrides = dict(overrides or {})
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        layers.append((f"preset {preset}", PRESETS[preset](overrides.get("model", config.model))))
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping of option: value")
        layers.append((str(path), loaded))
    layers.append(("command line", overrides))
    for origin, values in layers:
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"unknown config option {key!r} (from {origin}); known options: {sorted(known)}")
            current = getattr(config, name)
            setattr(config, name, _coerce(name, value, current))
    return config


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def describe(config: TrainConfig) -> str:
    return json.dumps(config.to_dict(), indent=2)
