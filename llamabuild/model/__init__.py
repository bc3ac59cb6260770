"""GGUF models: what the pinned llama.cpp can load (capabilities), and `verify-model`'s checks.

Kept apart from llamabuild.inspect (Mach-O/ELF): a model is data the helper loads, not code.
"""
