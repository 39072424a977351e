"""``as_bytes``: a bytes-like value copied into an exact ``bytes`` object.

Shared by the batch calls (:mod:`mapcache._cache`) and the loader of
``get_or_load`` (:mod:`mapcache._load`); it lives apart from both so that
neither has to import the other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_bytes"]


def as_bytes(value: Any, expected: str = "a mapcache value must be bytes-like") -> bytes:
    """``value`` as ``bytes``: ``bytes`` itself unchanged, any other bytes-like
    object copied (a ``bytes`` subclass too: its ``__len__`` is not trusted,
    and the length passed to C must be the buffer's).

    Raises TypeError for a ``str`` (it has no one encoding to assume) and for
    anything that is not bytes-like; ``expected`` starts the message.
    """
    if value.__class__ is bytes:
        return value
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        raise TypeError(f"{expected}, not str (encode it first)")
    try:
        with memoryview(value) as mv:
            return mv.tobytes()
    except TypeError:
        raise TypeError(f"{expected}, not {type(value).__name__}") from None
