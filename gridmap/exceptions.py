"""Errors of the grid and workflow, with messages meant for users (translated)."""


class GridImportError(ValueError):
    """A grid layer cannot be imported; the message names the file or field and what to do."""


class InvalidTransition(ValueError):
    """A workflow action is not allowed from the ticket's current state, or by this user."""


class ConcurrentChange(InvalidTransition):
    """The ticket changed since the user loaded it (version check failed)."""
