"""The one error type services raise; consumers and views turn it into a clear message."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the desk refuses. code is stable (clients branch on it); message is for people."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_frame(self) -> dict[str, object]:
        return {"type": "error", "code": self.code, "message": self.message, **self.details}
