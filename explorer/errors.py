"""The one exception type for mistakes a user can cause (bad input, unknown model...)."""


class ExplorerError(ValueError):
    """A problem the user can act on; the message says what and how to fix it.

    The UI shows it with ``gr.Error``, the CLI prints it to stderr and exits 2.
    """
