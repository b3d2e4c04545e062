"""int8 inference: post-training quantization (PyTorch's PT2E flow, or NNCF for OpenVINO), saved and reloaded.

``quantize(model, calibration)`` gives a ``QuantizedModel`` that runs compiled by inductor with
oneDNN's int8 kernels (``engine="openvino"``: an ``OpenVinoModel``, quantized by NNCF and run by
OpenVINO); ``sensitivity(model, calibration)`` reports how much each layer loses in int8 before
anything is decided; ``save_quantized`` / ``load_quantized`` keep the result without the float
model or the calibration set. CPU only; torchao (``pip install 'splitattn[quantize]'``) and
openvino/nncf (``'splitattn[openvino]'``) are imported when a model is quantized, never at
package import.
"""

from .archive import DEFAULT_MIN_AGREEMENT, is_quantized_archive, load_quantized, save_quantized
from .engines import ATTENTION_INPUT_CHOICES, QUANTIZE_ENGINES, QuantizeEngine, QuantizeRequest, quantize
from .pt2e import KEEP_FLOAT_CHOICES, QuantizedModel, attention_mlp_names, check_quantizable
from .sensitivity import LayerSensitivity, format_sensitivity, sensitivity

__all__ = [
    "ATTENTION_INPUT_CHOICES",
    "DEFAULT_MIN_AGREEMENT",
    "KEEP_FLOAT_CHOICES",
    "QUANTIZE_ENGINES",
    "LayerSensitivity",
    "QuantizeEngine",
    "QuantizeRequest",
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
