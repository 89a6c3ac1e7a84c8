"""The one error type for bad prompt media input."""
from __future__ import annotations


class PromptMediaError(ValueError):
    """A prompt media file (or a value derived from it) is invalid.

    ``str(err)`` reads ``file:line:column: field: message`` so a user can jump to the spot;
    the parts are kept as attributes for programs.
    """

    def __init__(self, message: str, *, source: str = "<prompt media>", line: int | None = None,
                 column: int | None = None, field: str = ""):
        self.source = source
        self.line = line
        self.column = column
        self.field = field
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
