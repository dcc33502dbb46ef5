"""dripcourse: drip email courses written as files, sent at each subscriber's local send time."""

__version__ = "0.1.0"
