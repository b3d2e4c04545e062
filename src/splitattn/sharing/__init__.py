"""Trained models that travel: ``save_pretrained`` folders with a model card, and the Hugging Face Hub.

Sits above training and inspect (it reads run directories and counts MACs) and below the CLI.
Loading goes the other way through ``create_model("hf-hub:org/repo")`` (``splitattn.weights.hub``).
"""

from .card import model_card
from .pretrained import save_pretrained
from .push import push_to_hub
from .run import RunRecord, read_run

__all__ = ["RunRecord", "model_card", "push_to_hub", "read_run", "save_pretrained"]
