"""The board side of flopgap: measures ONNX Runtime inference honestly and reports it.

Imports only the standard library, onnxruntime, psutil, pyzmq and numpy (never pandas or onnx),
so it installs and runs on a 1 GB Raspberry Pi.
"""

from shared.version import __version__

__all__ = ["__version__"]
