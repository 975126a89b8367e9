"""Errors a person can act on. The CLI prints their message without a traceback.

Every package may raise these (the module has no dependencies); anything else escaping
to the CLI is a bug and keeps its traceback.
"""


class ExplainrecError(Exception):
    """Base class: the message says what was wrong, where, and what was expected."""


class DataError(ExplainrecError):
    """A data file is missing, unreadable or violates the canonical schema."""


class ConfigError(ExplainrecError):
    """A config file or a --set override is invalid (unknown key, wrong type)."""


class BundleError(ExplainrecError):
    """A bundle is missing, incomplete, corrupt or of an unsupported schema version."""
