"""Exception types raised for user mistakes.

Every error a user can cause by passing a bad file, argument or board derives
from :class:`DhqError`; the command-line entry points print its message on one
line and exit with status 2 instead of showing a traceback.
"""


class DhqError(Exception):
    """Base class of all user-facing errors of dhq_rtl."""


class ModelImageError(DhqError):
    """A model image file is malformed, corrupt or inconsistent."""


class ImageError(DhqError):
    """An input picture cannot be read or has the wrong shape."""


class FitError(DhqError):
    """A model does not fit the resources of the selected board."""


class ToolchainError(DhqError):
    """A synthesis, place-and-route or simulation tool is missing or failed."""


class BoardError(DhqError):
    """An unknown board name or an inconsistent board description."""


class OutputError(DhqError):
    """An output path is unusable (a folder, under a file, unwritable, or one
    of the command's inputs), or writing an output failed.

    ``problem``: what is wrong, without the advice of the message (for
    callers that act on it themselves, such as the simulator cache).
    """

    def __init__(self, message, problem=None):
        super().__init__(message)
        self.problem = problem or message
