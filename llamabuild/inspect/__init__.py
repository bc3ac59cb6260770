"""Binary inspection: Mach-O and ELF files in, plain frozen dataclasses out."""

from llamabuild.inspect.binary import Binary, Dylib, Import, Signature, Slice
from llamabuild.inspect.reader import inspect_binary

__all__ = ["Binary", "Dylib", "Import", "Signature", "Slice", "inspect_binary"]
