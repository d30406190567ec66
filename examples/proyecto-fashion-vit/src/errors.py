"""The one exception the project raises on purpose."""


class ProjectError(Exception):
    """Something the user can fix: a bad config value, a missing file, a step not run.

    The message says what was expected, what was found and what to do; the command
    line prints it as one line (:func:`src.command.run`), the log keeps the details.
    """
