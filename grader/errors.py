"""Every error a user can meet, each carrying the message the user sees."""


class GraderError(Exception):
    """Base class: the message is written for the student or instructor, not for a developer."""


class SubmissionError(GraderError):
    """The submission cannot be read as a notebook (empty, not JSON, not UTF-8, ...)."""


class InvalidMeasurement(GraderError):
    """What the kernel handed back is not well-formed measurement data."""


class ExpectedOutputsError(GraderError):
    """The expected outputs are missing or unreadable; run `make expected`."""
