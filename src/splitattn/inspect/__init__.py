"""Look inside the models: summaries, the zoo table, attention weights, Grad-CAM and their pictures.

Sits above the factory (it builds models by name) and below the CLI.
"""

from .summary import Row, Summary, format_summary, parse_input_size, summarize, summarize_model
from .zoo_table import FORMATS, ZooRow, count, format_rows, zoo_rows

__all__ = [
    "FORMATS",
    "Row",
    "Summary",
    "ZooRow",
    "count",
    "format_rows",
    "format_summary",
    "parse_input_size",
    "summarize",
    "summarize_model",
    "zoo_rows",
]
