"""Version of the ConnectionHandler module this package re-implements, and of the package."""

__version__ = "2.3.0"
