"""The SIGNS hand-sign data set: loading it, a synthetic stand-in, and the training recipe."""

from signs.loader import SignsDataError, load_signs

__all__ = ["SignsDataError", "load_signs"]
