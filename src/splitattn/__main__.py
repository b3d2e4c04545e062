"""``python -m splitattn`` runs the command line (also what ``torchrun -m splitattn`` starts)."""

import sys

from .cli import main

sys.exit(main())
