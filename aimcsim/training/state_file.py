"""Training-state files: ``torch.save`` bytes, zlib-compressed (lossless), and their loader.

A run's ``checkpoint.pt`` holds the weights and the optimizer's moments, so it is about twice
the network. Compressing it (zlib level 6: 0.86-0.88 of the size, measured on ``t500_depth``'s
two checkpoints; some 0.2 s for 4 MB) keeps the resumable state of networks up to some 550,000
parameters under the repository's 4 MB per file. :func:`load_state` reads these and plain
``torch.save`` files (``model.pt``, checkpoints written before), told apart by the zip
signature that starts every ``torch.save`` file.
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import torch

#: The first bytes of every ``torch.save`` file (a zip archive).
TORCH_SIGNATURE = b"PK\x03\x04"
#: zlib compression level of :func:`save_compressed_state`.
LEVEL = 6


def save_compressed_state(obj: object, path: str | os.PathLike) -> None:
    """Write ``torch.save(obj)``'s bytes zlib-compressed to ``path``, atomically (a temporary
    file beside it, then a rename: a kill never leaves half a file)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(zlib.compress(buffer.getvalue(), LEVEL))
    os.replace(tmp, path)


def load_state(path: str | os.PathLike) -> object:
    """Load a file of :func:`save_compressed_state` or of plain ``torch.save`` (tensors and
    plain containers only: ``weights_only``), onto the CPU."""
    data = Path(path).read_bytes()
    if not data.startswith(TORCH_SIGNATURE):
        try:
            data = zlib.decompress(data)
        except zlib.error as err:
            raise ValueError(f"{path} is neither a torch.save file nor a compressed training "
                             f"state ({err})") from None
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
