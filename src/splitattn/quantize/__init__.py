"""int8 inference: post-training quantization with PyTorch's PT2E flow, saved and reloaded as ``.pt2``.

``quantize(model, calibration)`` gives a ``QuantizedModel`` that runs compiled by inductor with
oneDNN's int8 kernels; ``sensitivity(model, calibration)`` reports how much each layer loses in int8
before anything is decided; ``save_quantized`` / ``load_quantized`` keep the result without the
float model or the calibration set. CPU (x86) only; torchao (``pip install 'splitattn[quantize]'``)
is imported when a model is quantized, never at package import.
"""

from .archive import is_quantized_archive, load_quantized, save_quantized
from .pt2e import KEEP_FLOAT_CHOICES, QuantizedModel, attention_mlp_names, check_quantizable, quantize
from .sensitivity import LayerSensitivity, format_sensitivity, sensitivity

__all__ = [
    "KEEP_FLOAT_CHOICES",
    "LayerSensitivity",
    "QuantizedModel",
    "attention_mlp_names",
    "check_quantizable",
    "format_sensitivity",
    "is_quantized_archive",
    "load_quantized",
    "quantize",
    "save_quantized",
    "sensitivity",
]
