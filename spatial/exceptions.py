"""Errors raised by the ticket core, with messages a user can act on."""


class IntakeError(Exception):
    """A file cannot be imported as a whole; the message names the file, row or column and the fix."""


class MappingError(IntakeError):
    """A column-mapping profile or mapping file is invalid or does not fit the file's headers."""
