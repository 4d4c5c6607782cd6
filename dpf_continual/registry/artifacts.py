"""Tensor and data artifacts: safetensors bytes addressed by SHA-256, never pickle.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON header
(tensor name -> dtype, shape, data offsets; plus an optional ``__metadata__`` dict of strings), then
the raw tensor bytes. The helpers here read and rewrite that layout in pure Python, so query
commands never need torch; only :func:`encode_tensors` and :func:`decode_tensors` import it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import sys
from array import array
from typing import TYPE_CHECKING, Any

from dpf_continual.errors import IntegrityError

if TYPE_CHECKING:
    import torch

_HEADER_SIZE = struct.Struct("<Q")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 digest of ``data`` as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()


def verify(data: bytes, expected: str, *, what: str) -> bytes:
    """Return ``data`` if its SHA-256 is ``expected``.

    Args:
        data: The stored bytes.
        expected: The digest recorded when they were written.
        what: The object they belong to, for the error message (``"prompt of task 'x' v3"``).

    Raises:
        IntegrityError: The bytes do not hash to ``expected``.
    """
    actual = sha256_hex(data)
    if actual != expected:
        raise IntegrityError(
            f"{what} is corrupted: stored bytes hash to {actual[:12]}, expected {expected[:12]}"
        )
    return data


def encode_tensors(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """Serialise tensors to safetensors bytes (CPU, contiguous; same input, same bytes)."""
    from safetensors.torch import save

    ready = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    return save(ready, metadata=metadata)


def decode_tensors(data: bytes) -> dict[str, torch.Tensor]:
    """Load every tensor from safetensors bytes (copies, so callers may modify them)."""
    from safetensors.torch import load

    return load(data)


def parse_header(data: bytes) -> tuple[dict[str, Any], int]:
    """Read a safetensors header without torch.

    Returns:
        The header dict and the offset where tensor bytes start.

    Raises:
        IntegrityError: The bytes are not a safetensors file.
    """
    if len(data) < _HEADER_SIZE.size:
        raise IntegrityError(f"not a safetensors file: only {len(data)} bytes")
    (length,) = _HEADER_SIZE.unpack_from(data)
    start = _HEADER_SIZE.size + length
    if start > len(data):
        raise IntegrityError(f"not a safetensors file: header of {length} bytes runs past the end")
    try:
        header = json.loads(data[_HEADER_SIZE.size : start])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IntegrityError(f"not a safetensors file: unreadable header ({error})") from None
    return header, start


def tensor_shape(data: bytes, name: str) -> list[int]:
    """The shape of tensor ``name`` in safetensors bytes."""
    header, _ = parse_header(data)
    return list(_entry(header, name)["shape"])


def read_floats(data: bytes, name: str) -> tuple[list[int], list[float]]:
    """A float32 tensor's shape and its values, flattened, without torch.

    Raises:
        IntegrityError: No such tensor, or it is not float32.
    """
    header, start = parse_header(data)
    entry = _entry(header, name)
    if entry["dtype"] != "F32":
        raise IntegrityError(f"tensor {name!r} is {entry['dtype']}, expected F32")
    begin, end = entry["data_offsets"]
    values = array("f")
    values.frombytes(data[start + begin : start + end])
    if sys.byteorder == "big":  # safetensors is little-endian
        values.byteswap()
    return list(entry["shape"]), values.tolist()


def extract_tensor(
    data: bytes, name: str, *, rename: str | None = None, metadata: dict[str, str] | None = None
) -> bytes:
    """A new safetensors file holding only tensor ``name`` (optionally renamed), with ``metadata``.

    The tensor bytes are copied as they are; only the header is written anew.
    """
    header, start = parse_header(data)
    entry = _entry(header, name)
    begin, end = entry["data_offsets"]
    body = data[start + begin : start + end]
    new_header: dict[str, Any] = {}
    if metadata:
        new_header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    new_header[rename or name] = {
        "dtype": entry["dtype"],
        "shape": entry["shape"],
        "data_offsets": [0, len(body)],
    }
    encoded = json.dumps(new_header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep tensor bytes 8-byte aligned
    return _HEADER_SIZE.pack(len(encoded)) + encoded + body


def encode_json(value: Any) -> bytes:
    """Gzip-compressed JSON with a fixed timestamp, so equal values give equal bytes."""
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(raw, mtime=0)


def decode_json(data: bytes) -> Any:
    """The value stored by :func:`encode_json`."""
    return json.loads(gzip.decompress(data))


def _entry(header: dict[str, Any], name: str) -> dict[str, Any]:
    entry = header.get(name)
    if not isinstance(entry, dict) or name == "__metadata__":
        names = sorted(key for key in header if key != "__metadata__")
        raise IntegrityError(f"safetensors bytes hold no tensor {name!r} (found: {names})")
    return entry
