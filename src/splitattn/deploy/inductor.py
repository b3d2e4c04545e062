"""``torch.compile`` for a deployed model, with inductor's freezing switched on where it must be.

Freezing lets inductor treat the weights as constants: on CPU it then packs every conv weight for
oneDNN and fuses the ReLU or residual add after it, as the eager ``fuse="onednn"`` path does by
hand, and compiles the attention arithmetic in between. The switch is a global inductor setting,
and it has to be on while dynamo traces the model as well as while inductor compiles it (passing
it through ``torch.compile(options=...)`` reaches inductor only, and nothing gets packed). So the
compiled model is called inside ``inductor.config.patch(freezing=True)``, which leaves the
setting as it was for everyone else. Freezing applies to inference (no autograd); with autograd
on, the same compiled model runs unfrozen.

Shapes are static (``dynamic=False``): a second input shape compiles a second graph for that
shape instead of letting dynamo's automatic dynamic shapes make the batch symbolic. A symbolic
batch would cost every call: inductor can pack a conv's weight for oneDNN once only when the
input size is known ("For dynamic shape case, we need to pack weight in runtime",
``torch/_inductor/fx_passes/mkldnn_fusion.py``), so with a symbolic batch each conv repacks its
weight on every forward. Callers that see many batch sizes pad them to one (:class:`FixedBatch`).

Dynamo keeps its compiled graphs per Python function, and every model of one class runs the same
``forward``: each new instance (another deploy of a ResNet, another batch size) counts against the
function's recompile limit (8 in torch 2.14), past which dynamo runs the model eagerly without a
word (measured: the 9th and 10th compiled instances of one class compiled no graph). Different
instances are not recompiles of one model, so our compiles run with a limit of at least
:data:`RECOMPILE_LIMIT`; ``splitattn.bench.compile_check`` verifies each configuration compiled.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

RECOMPILE_LIMIT = 64  # graphs per forward function: models of one class, times the shapes each one runs


def _calling(model: nn.Module) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return model(*args, **kwargs)

    return call


class FrozenInductorModel(nn.Module):
    """``torch.compile(model)`` that compiles with inductor's weight freezing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model  # the parameters, state_dict and attributes users look for
        # Not a submodule: no duplicate parameters. dynamic=False: one static graph per shape (see
        # above). A function calling the model rather than the model itself: torch.compile(module)
        # compiles its forward, and its hooks (bfloat16 deploy's casts, :func:`.precision.compute_in`)
        # become graphs of their own around it; traced through the call they join the one graph.
        object.__setattr__(self, "_compiled", torch.compile(_calling(model), dynamic=False))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
        with inductor_config.patch(freezing=True), dynamo_config.patch(recompile_limit=limit):
            return self._compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)  # num_classes, in_chans, ...
