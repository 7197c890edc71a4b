"""Errors that mean "the caller chose something invalid", as opposed to a bug."""


class ConfigError(ValueError):
    """An invalid configuration or input that its caller chose: an unknown preset, an image size a
    network cannot take, a malformed policy string, a file of the wrong kind. Still a ValueError for
    library callers; the command-line tools show it as one line, while any other ValueError (a bug)
    keeps its traceback."""


class DataError(Exception):
    """Bad or missing data. The message names what and where, on one line."""
