"""Errors of the routing app. Their messages are translated for users."""


class RoutingError(Exception):
    """Base class of the errors raised by road loading, patrol planning and coverage."""


class RoadFileError(RoutingError):
    """An OpenStreetMap file is missing, of an unknown format, unreadable or holds no usable road."""


class PatrolInputError(RoutingError):
    """A patrol request has an invalid start, budget, area or stop."""


class StationFileError(RoutingError):
    """A fire-station file has a missing column or an invalid row."""
