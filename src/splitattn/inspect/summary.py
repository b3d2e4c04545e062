"""Layer-by-layer summaries: output shape, parameters and MACs of every module and attention step.

Counting is left to :class:`torch.utils.flop_counter.FlopCounterMode`, which knows the cost of every
convolution and matrix product (grouped ones included) from shapes alone; a row's MACs are how
much its total grew while that row ran, so rows and totals come from the same counter. Like the
papers' tables, only convolutions and matrix products count: batch norm, activations, pooling and
the element-wise attention steps cost nothing here. On the ``meta`` device (see
:func:`summarize_model`) the whole pass allocates nothing and takes well under a second even for
ResNeSt-269 at 416 px.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import SplitattnError
from ..factory import create_model
from ..layers import AttentionLayer
from .steps import LAYOUT_OPS, describe_child, describe_step, record_steps

ATTENTION_LAYERS = (AttentionLayer,)  # every attention layer, whatever its kind, describes its own steps
_INPUT_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass
class Row:
    """One module call, or one function step inside a traced layer (``step=True``).

    ``shape`` leaves out the batch dimension; ``params`` and ``macs`` include everything below the
    row, so only the rows without children add up to the totals.
    """

    path: str
    type: str
    depth: int
    shape: tuple[int, ...] | str | None = None
    params: int = 0
    macs: int = 0
    note: str = ""
    step: bool = False


@dataclass
class Summary:
    """Rows in execution order (a parent before its children) and the model's totals."""

    input_size: tuple[int, ...]
    rows: list[Row]
    total_params: int
    trainable_params: int
    total_macs: int
    untraced: list[str] = field(default_factory=list)

    def leaf_rows(self) -> list[Row]:
        """Rows with nothing below them: their params and MACs add up to the totals."""
        leaves = []
        for i, row in enumerate(self.rows):
            nxt = self.rows[i + 1] if i + 1 < len(self.rows) else None
            if nxt is None or not nxt.path.startswith(row.path + ".") or not row.path:
                leaves.append(row)
        return [row for row in leaves if row.path]

    def find(self, note: str) -> list[Row]:
        """Rows whose note contains ``note`` (e.g. ``"r-softmax"``)."""
        return [row for row in self.rows if note in row.note]

    def format(self, depth: int | None = 3, only: str | None = None) -> str:
        return format_summary(self, depth, only)


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> ``(3, 224, 224)``, with an error that shows the expected form."""
    match = _INPUT_RE.match(text)
    if not match or any(int(v) < 1 for v in match.groups()):
        raise SplitattnError(f"--input must be CxHxW with three positive integers, e.g. 3x224x224; got {text!r}")
    return tuple(int(v) for v in match.groups())  # type: ignore[return-value]


def _shape_of(out: object) -> tuple[int, ...] | str | None:
    if isinstance(out, torch.Tensor):
        return tuple(out.shape[1:])
    if isinstance(out, (list, tuple)):
        return f"{len(out)} x " + ", ".join(_format_shape(_shape_of(o)) for o in out)
    return None


def _format_shape(shape: tuple[int, ...] | str | None) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, str):
        return shape
    return "x".join(str(s) for s in shape) if shape else "scalar"


def _child_notes(model: nn.Module) -> dict[str, str]:
    """Paper names for the submodules of attention layers (``layer1.0.conv2.conv`` -> grouped conv)."""
    modules = dict(model.named_modules())
    notes = {}
    for name in modules:
        parts = name.split(".")
        for cut in range(len(parts) - 1, -1, -1):
            ancestor = modules.get(".".join(parts[:cut]))
            if isinstance(ancestor, ATTENTION_LAYERS):
                notes[name] = describe_child(ancestor, ".".join(parts[cut:]))
                break
    return notes


def summarize(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 1) -> Summary:
    """Run one forward pass of zeros of ``(batch_size, *input_size)`` and record every row.

    Runs on the model's device (build it on ``torch.device("meta")`` to count without computing)
    in eval mode and without gradients; the model is left as it was found.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    names = {module: name for name, module in model.named_modules()}
    notes = _child_notes(model)
    rows: list[Row] = []
    open_rows: list[tuple[Row, int]] = []
    counter = FlopCounterMode(display=False)

    def before(module: nn.Module, args: object) -> None:
        name = names[module]
        row = Row(name, type(module).__name__, name.count(".") + 1 if name else 0,
                  params=sum(p.numel() for p in module.parameters()), note=notes.get(name, ""))
        rows.append(row)
        open_rows.append((row, counter.get_total_flops()))

    def after(module: nn.Module, args: object, out: object) -> None:
        row, flops = open_rows.pop()
        row.shape = _shape_of(out)
        row.macs = (counter.get_total_flops() - flops) // 2

    def on_step(layer: nn.Module, step: str, op: str, run):
        flops = counter.get_total_flops()
        out = run()
        if isinstance(out, torch.Tensor):
            note = describe_step(layer, op, out)
            if op not in LAYOUT_OPS or note:
                parent = names[layer]
                path = f"{parent}.{step}" if parent else step
                rows.append(Row(path, f"{op}()", path.count(".") + 1, _shape_of(out),
                                macs=(counter.get_total_flops() - flops) // 2, note=note, step=True))
        return out

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    was_training = model.training
    try:
        model.eval()
        x = torch.zeros(batch_size, *input_size, device=device, dtype=dtype)
        with record_steps(model, on_step) as untraced, torch.no_grad(), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return Summary(
        input_size=tuple(input_size),
        rows=rows,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_macs=counter.get_total_flops() // 2,
        untraced=[names[m] or type(m).__name__ for m in untraced if isinstance(m, ATTENTION_LAYERS)],
    )


def summarize_model(name: str, input_size: tuple[int, ...] | None = None, **kwargs) -> Summary:
    """Summary of a zoo model, built on the meta device: no weights allocated, nothing computed.

    ``input_size`` defaults to the model's ``pretrained_cfg["input_size"]``; its channels set
    ``in_chans`` (a 1 x 224 x 224 input summarises the grayscale model). ``kwargs`` go to
    :func:`splitattn.create_model` (``num_classes``, ``output_stride`` ...).
    """
    if input_size is not None:
        kwargs.setdefault("in_chans", input_size[0])
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    size = tuple(input_size) if input_size is not None else tuple(model.pretrained_cfg["input_size"])
    return summarize(model, size)


def _human(value: int, units: tuple[str, ...] = ("", "K", "M", "G", "T")) -> str:
    scaled, unit = float(value), 0
    while abs(scaled) >= 1000 and unit < len(units) - 1:
        scaled, unit = scaled / 1000, unit + 1
    return f"{scaled:.2f} {units[unit]}".rstrip() if unit else str(value)


def format_summary(summary: Summary, depth: int | None = 3, only: str | None = None) -> str:
    """A plain-text table of the rows down to ``depth`` (None: all), with the totals under it.

    ``only`` keeps one module and what is inside it (e.g. ``"layer1.0.conv2"``).
    """
    rows = [r for r in summary.rows if r.depth >= 1 and (depth is None or r.depth <= depth)]
    if only:
        rows = [r for r in rows if r.path == only or r.path.startswith(only + ".")]
        if not rows:
            blocks = [r.path for r in summary.rows if r.depth == 3 and r.path.startswith("layer")][:3]
            raise SplitattnError(f"no row matches --only {only!r}; module paths look like {', '.join(blocks)}")
    top = min((r.depth for r in rows), default=1)
    table = [("Layer (path)", "Type", "Output shape", "Params", "MACs", "Note")]
    table += [("  " * (r.depth - top) + r.path, r.type, _format_shape(r.shape), f"{r.params:,}" if not r.step else "",
               f"{r.macs:,}", r.note) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(6)]
    right = {3, 4}

    def line(cells: tuple[str, ...]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    out = [line(table[0]), "-" * len(line(table[0]))] + [line(cells) for cells in table[1:]]
    size = "x".join(str(s) for s in summary.input_size)
    out += [
        "-" * len(line(table[0])),
        f"Total params:     {summary.total_params:,} ({_human(summary.total_params)})",
        f"Trainable params: {summary.trainable_params:,}",
        f"Total MACs:       {summary.total_macs:,} ({_human(summary.total_macs)}) for one {size} input",
        "MACs count convolutions and matrix products (torch.utils.flop_counter), as the papers do.",
    ]
    deepest = max((r.depth for r in summary.rows), default=0)
    if depth is not None and depth < deepest:
        out.append(f"Showing depth <= {depth}; --depth {deepest} shows every step inside the attention layers.")
    if summary.untraced:
        out.append("Steps not shown (forward not traceable) for: " + ", ".join(summary.untraced[:5])
                   + (" ..." if len(summary.untraced) > 5 else ""))
    return "\n".join(out)
