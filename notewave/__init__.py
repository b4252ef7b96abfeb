"""notewave: a symbolic-plus-audio hybrid music generation library."""

__version__ = "0.1.0"
