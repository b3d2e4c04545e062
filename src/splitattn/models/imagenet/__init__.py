"""The ImageNet-1k classes, shipped with the package: synsets in output order, their names, and the
200-class subsets of ImageNet-A and ImageNet-R.

Every published ImageNet-1k network orders its 1,000 outputs by sorted WordNet id (``n01440764``
first), so a weights file is only readable with this list; none of our hosts serves it, hence
package data (no download). The files were generated once from timm's ``timm/data/_info``
(``imagenet_synsets.txt``, ``imagenet_synset_to_lemma.txt``, ``imagenet_a_synsets.txt``,
``imagenet_r_synsets.txt``), as facts:

- ``imagenet1k.tsv``: ``synset<TAB>lemmas`` per line, in output order;
- ``imagenet_a.txt``, ``imagenet_r.txt``: one synset per line, the classes those test sets hold.

The name of a class is its first lemma ("tub" for ``n04493381`` "tub, vat"), as torchvision and
timm print it; two names are shared by two classes each ("crane", "maillot"), which is why the
synset is the key that labels data.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources

from ...errors import SplitattnError
from ..classes import ClassList

__all__ = ["CLASS_SUBSETS", "class_subset", "imagenet_classes"]

# The named subsets of the 1,000 classes: the test sets that hold only some of them.
CLASS_SUBSETS: dict[str, str] = {"imagenet-a": "imagenet_a.txt", "imagenet-r": "imagenet_r.txt"}


def _read(name: str) -> list[str]:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8").splitlines()


@functools.cache
def imagenet_classes() -> ClassList:
    """The 1,000 ImageNet-1k classes in the order every published ImageNet network's outputs follow.

    ``.synsets`` are the WordNet ids, ``.names`` the first lemma of each, ``.lemmas`` all of them;
    ``.index_of`` takes a synset, a name or an index.
    """
    synsets, lemmas = zip(*(line.split("\t", 1) for line in _read("imagenet1k.tsv")), strict=True)
    names = tuple(lemma.split(", ")[0] for lemma in lemmas)
    return ClassList(names=names, synsets=tuple(synsets), lemmas=tuple(lemmas))


@functools.cache
def class_subset(name: str) -> tuple[int, ...]:
    """The ImageNet-1k output indices of a named subset (``"imagenet-a"``, ``"imagenet-r"``), sorted.

    Args:
        name: a key of :data:`CLASS_SUBSETS`.

    Raises:
        ValueError: for a name not in :data:`CLASS_SUBSETS`, with the close ones.
    """
    if name not in CLASS_SUBSETS:
        close = difflib.get_close_matches(name, CLASS_SUBSETS, n=2, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SplitattnError(f"unknown class subset {name!r}.{hint} Known: {', '.join(CLASS_SUBSETS)}")
    classes = imagenet_classes()
    return tuple(sorted(classes.index_of(synset) for synset in _read(CLASS_SUBSETS[name])))
