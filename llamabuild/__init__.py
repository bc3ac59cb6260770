"""llamabuild: a verified pipeline from llama.cpp source to a signed, sandboxed llama-server."""

__version__ = "0.1.0"
