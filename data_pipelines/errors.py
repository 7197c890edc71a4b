"""Errors a user can cause with their data: each carries one clear line."""


class DataError(Exception):
    """Bad or missing data. The message names what and where, on one line."""
