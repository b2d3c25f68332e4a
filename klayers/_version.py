"""The package version (one place; ``klayers.__version__`` and the files klayers writes)."""

__version__ = "0.1.0"
