"""The one exception type for bad user input; the CLI prints its message and exits with 2."""


class HwnasError(ValueError):
    """Bad input (architecture, LUT, data, option). The message names the bad value."""
