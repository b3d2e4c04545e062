"""What a classifier's outputs mean: one name (and, where known, a WordNet synset) per output index.

Evaluation and label files name a class in whichever way their source does: ImageNet's folders by
synset (``n04493381``), a hand-written CSV by name (``tub``) or by index (``876``). One lookup,
:meth:`ClassList.index_of`, takes all three, so every label source resolves classes the same way
and fails the same way (a did-you-mean for a typo, both synsets for an ambiguous name).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import SplitattnError


class UnknownClassError(SplitattnError):
    """A class given by name, synset or index that the model does not have; the message says which it has."""


@dataclass(frozen=True)
class ClassList:
    """The classes of a classifier, in output order.

    ``names`` are what predictions print ("tub"); ``synsets`` the WordNet ids where the classes are
    ImageNet's (None otherwise); ``lemmas`` every name of each class ("tub, vat"), None where a class
    has only its one name.
    """

    names: tuple[str, ...]
    synsets: tuple[str, ...] | None = None
    lemmas: tuple[str, ...] | None = None
    _by_key: dict[str, list[int]] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for other, what in ((self.synsets, "synsets"), (self.lemmas, "lemmas")):
            if other is not None and len(other) != len(self.names):
                raise SplitattnError(f"{len(other)} {what} for {len(self.names)} class names")
        by_key: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            by_key.setdefault(name, []).append(index)
        for index, synset in enumerate(self.synsets or ()):
            by_key.setdefault(synset, []).append(index)
        object.__setattr__(self, "_by_key", by_key)

    def __len__(self) -> int:
        return len(self.names)

    def knows(self, key: str | int) -> bool:
        """Whether :meth:`index_of` resolves ``key`` to exactly one class."""
        try:
            self.index_of(key)
        except UnknownClassError:
            return False
        return True

    def index_of(self, key: str | int) -> int:
        """The output index of a class given as its synset, its name or its index (``"876"`` or 876).

        Args:
            key: a synset (``"n04493381"``), a class name (``"tub"``) or an index (int or digits).

        Raises:
            UnknownClassError: for an unknown key (with close names), an index out of range, or a
                name two classes share ("crane": the bird and the machine), naming both synsets.
        """
        if isinstance(key, str):
            key = key.strip()
        if isinstance(key, int) or (key not in self._by_key and key.isdigit()):  # a class named "3" is a name
            index = int(key)
            if not 0 <= index < len(self.names):
                raise UnknownClassError(f"class index {index} is out of range: the model has {len(self.names)} "
                                        f"classes (0..{len(self.names) - 1})")
            return index
        found = self._by_key.get(key)
        if found is None:
            close = difflib.get_close_matches(key, self._by_key, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
            kinds = "a synset, a class name or an index" if self.synsets else "a class name or an index"
            raise UnknownClassError(f"unknown class {key!r}: expected {kinds} of the model's {len(self.names)} "
                                    f"classes.{hint}")
        if len(found) > 1:
            which = ", ".join(f"{self.synsets[i]} (index {i})" if self.synsets else f"index {i}" for i in found)
            raise UnknownClassError(f"class name {key!r} is ambiguous: {which}; name it by synset or index")
        return found[0]

    def describe(self, index: int) -> str:
        """``"tub (n04493381)"``: the name, and the synset where known, for messages and tables."""
        return f"{self.names[index]} ({self.synsets[index]})" if self.synsets else self.names[index]
