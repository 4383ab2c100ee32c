"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class SwapfaceError(Exception):
    """An error the user can act on; shown without a traceback."""

    exit_code = 1


class InputError(SwapfaceError):
    """The input (path, file, video, image) is missing or unusable."""

    exit_code = 2


class ConfigError(SwapfaceError):
    """An option or config file value is invalid."""

    exit_code = 2


class Cancelled(SwapfaceError):
    """A long job was cancelled (Ctrl-C, SIGTERM, a cancel from another thread)."""

    exit_code = 130
