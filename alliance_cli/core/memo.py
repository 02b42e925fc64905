"""A function's values remembered per key, up to a limit: the batch's look-up tables."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Remembered(dict[K, V], Generic[K, V]):
    """``table[key]`` is ``function(key)``, computed on the first look-up and kept while the
    table holds fewer than ``limit`` keys (then computed each time: memory stays flat), and
    ``keeps(key)`` allows (a key equal to another yet giving another value: not kept).

    A dict subclass, so a look-up that hits is C-level (``map(table.__getitem__, keys)``
    runs no Python for known keys).
    """

    def __init__(
        self, function: Callable[[K], V], limit: int, keeps: Callable[[K], bool] | None = None
    ) -> None:
        super().__init__()
        self.function, self.limit, self.keeps = function, limit, keeps

    def __missing__(self, key: K) -> V:
        value = self.function(key)
        if len(self) < self.limit and (self.keeps is None or self.keeps(key)):
            self[key] = value
        return value
