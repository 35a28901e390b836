"""Errors of the IoT intake."""


class PayloadError(ValueError):
    """A payload or one reading in it that cannot be stored; the message says which field and why."""

    def __init__(self, message, sensor_code=""):
        super().__init__(message)
        self.sensor_code = sensor_code
