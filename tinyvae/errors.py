"""The one exception family that means "the user asked for something we cannot do".

Command-line tools catch :class:`UserError`, print its message as a single line on
stderr and exit with status 2. Its message always says what was wrong and what to do.
Programming errors (bugs) are not UserErrors and keep their tracebacks.
"""


class UserError(Exception):
    """Bad input or a bad environment, explained in one actionable line."""
