"""The one exception type that reaches the user as a single line instead of a traceback."""


class UserError(Exception):
    """Bad input the user can fix: the message names the problem and the fix."""


def first_line(e: BaseException) -> str:
    """An exception's message cut to its first line, or its type's name when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
