"""Progress of reading an input, stage by stage, each stage counting what it really does.

Reading a fleet is not one step: its bytes arrive, then its lines are decoded, then its
distinct descriptors are parsed and validated (or, off the fast path, its records). A
bar per stage, over that stage's own units (bytes, lines, descriptors, records), moves
as the work does; a single bar over "files" would sit still through all of it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, TypeVar

from .errors import printable

T = TypeVar("T")

# Updates are batched: a bar's update costs about a microsecond, a record's validation tens.
TICK = 4096


class _Silent:
    """The stand-in for a bar when there is no progress to show."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Stages:
    """The bars of one input, made by a ``tqdm``-like ``factory`` (``None``: no bars)."""

    def __init__(self, factory: Callable[..., Any] | None, name: str) -> None:
        self.factory = factory
        self.name = printable(name)  # a file name may hold control characters, a terminal is no place for them

    def stage(self, what: str, total: int | None, unit: str) -> Any:
        """A bar for one stage (``what``, e.g. ``"decoding"``); ``total=None`` when unknown."""
        if self.factory is None:
            return _Silent()
        return self.factory(total=total, desc=f"{what} {self.name}", unit=unit, unit_scale=True)

    def counted(self, items: Iterable[T], what: str, total: int, unit: str) -> Iterator[T]:
        """``items``, with a bar over them (closed when they are all taken)."""
        if self.factory is None:
            yield from items
            return
        bar = self.stage(what, total, unit)
        try:
            done = 0
            for done, item in enumerate(items, start=1):
                yield item
                if done % TICK == 0:
                    bar.update(TICK)
            bar.update(done % TICK)
        finally:
            bar.close()


SILENT = Stages(None, "")
