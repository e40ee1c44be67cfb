"""tvr: the text-video retrieval library of DRGI Lab."""

__version__ = "0.1.0"
