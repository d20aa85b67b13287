"""The one exception family a user can cause, and where it happened."""

from __future__ import annotations


class FastmatchError(Exception):
    """An error in user input: a file, a record, a field, a policy.

    The message is one line that names where the problem is:
    ``FILE:LINE: record 'ID': field 'self.pv_mode': what is wrong``.
    Location parts that are unknown are left out; readers add them as the
    error travels outward (see :meth:`located`).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.record = record
        self.field = field
        super().__init__(str(self))

    def located(
        self,
        *,
        file: str | None = None,
        line: int | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> "FastmatchError":
        """Fill in location parts that are still unknown, outermost caller last."""
        self.file = self.file if self.file is not None else file
        self.line = self.line if self.line is not None else line
        self.record = self.record if self.record is not None else record
        if field is not None:
            self.field = field if self.field is None else f"{field}.{self.field}"
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return ": ".join([*where, self.message])


class PolicyError(FastmatchError):
    """The policy itself is invalid (unknown key, rule that does not fit its type, ...)."""


class InputError(FastmatchError):
    """A device record or an input file is invalid."""


class TemplateError(InputError):
    """A COMPATIBLE template does not parse or cannot be grounded."""


class ResultTooLargeError(FastmatchError):
    """A dense result would exceed the configured memory limit."""
