"""A griffe extension for the API pages: Sphinx roles in docstrings shown as code, not as written.

The docstrings name other objects the way Python's own docs do (``:func:`splitattn.deploy```,
``:class:`~splitattn.deploy.OpenVinoModel```), which reads well in ``help()`` and IDEs; Markdown
has no roles, so mkdocstrings printed them literally. This rewrites each into the code span Sphinx
would show: the whole name, or after ``~`` its last part, and a relative ``.name`` without its dot.
mkdocs.yml loads it (``extensions`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|data|meth|attr|exc|obj|const):`([^`]+)`")


def _shown(match: re.Match[str]) -> str:
    target = match.group(1)
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target.lstrip('.')}`"


def without_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role replaced by the code span it stands for."""
    return ROLE.sub(_shown, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = without_roles(obj.docstring.value)
