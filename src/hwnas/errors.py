"""The exception types for bad user input; the CLI prints the message and exits with 2."""


class HwnasError(ValueError):
    """Bad input (architecture, LUT, data, option). The message names the bad value."""


class SpecError(HwnasError):
    """An invalid architecture spec. The message names the field and the bad value."""
