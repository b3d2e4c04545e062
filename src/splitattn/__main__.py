"""``python -m splitattn`` runs the command line (also what ``torchrun -m splitattn`` starts)."""

from .cli import run_and_exit

run_and_exit()
