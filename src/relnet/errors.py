"""Errors that relnet reports to a user as one line, without a traceback."""


class UserError(Exception):
    """Bad input from the user: a file, a field, a command-line value.

    The CLI prints ``relnet: error: <message>`` and exits with status 2. The message must name what is wrong
    (the file and line or field, the option and its value) and, where it helps, how to fix it.
    """
