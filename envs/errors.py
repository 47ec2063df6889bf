"""The one exception type for env settings a user got wrong; the CLI prints it as one line."""


class EnvError(ValueError):
    """An env cannot be built as asked (bad kwarg value, map or layout); the message names the fix."""
