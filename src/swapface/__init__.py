"""swapface: face swapping in video — extract, curate, train, convert."""

__version__ = "0.1.0"
