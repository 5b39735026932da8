"""Errors the training loop raises for a person to read (``train.py`` prints them without a traceback)."""


class ConfigError(ValueError):
    """A configuration value is invalid or does not fit the data; the message names the config key."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is left untouched."""
