"""Look inside the models: summaries, the zoo table, attention weights, Grad-CAM and their pictures.

Sits above the factory (it builds models by name) and below the CLI. The pictures
(``inspect.plots``, ``inspect.explain``) import matplotlib, so they are imported on demand.
"""

from .attention import AttentionRecord, AttentionRecorder, attention_weights
from .gradcam import GradCam, grad_cam
from .summary import Row, Summary, format_summary, parse_input_size, summarize, summarize_model
from .zoo_table import FORMATS, WeightsRow, ZooRow, count, format_rows, weights_rows, zoo_rows

__all__ = [
    "FORMATS",
    "AttentionRecord",
    "AttentionRecorder",
    "GradCam",
    "Row",
    "Summary",
    "WeightsRow",
    "ZooRow",
    "attention_weights",
    "count",
    "format_rows",
    "format_summary",
    "grad_cam",
    "parse_input_size",
    "summarize",
    "summarize_model",
    "weights_rows",
    "zoo_rows",
]
