"""``mapcache.gpu_status(cache)``: whether a cache's GPU rehash engine is active
and, if not, why (``mapcache_gpu_status``)."""

from __future__ import annotations

from ctypes import (
    POINTER,
    Structure,
    byref,
    c_char,
    c_int32,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
    sizeof,
)
from dataclasses import dataclass

from . import _lib
from ._cache import Cache
from ._errors import MapCacheError

__all__ = ["GpuStatus", "gpu_status"]

#: ``MAPCACHE_GPU_REASON_LEN``: bytes of ``mapcache_gpu_info.reason``.
GPU_REASON_LEN = 512


class mapcache_gpu_info(Structure):
    """``mapcache_gpu_info`` (include/mapcache.h)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("active", c_uint32),
        ("reserved", c_uint32),
        ("gpu_rebuilds", c_uint64),
        ("fallbacks", c_uint64),
        ("reason", c_char * GPU_REASON_LEN),
    ]


# A library of the same ABI version from before the GPU engine lacks the
# function: the package still imports, and gpu_status says so.
_gpu_status = getattr(_lib.lib, "mapcache_gpu_status", None)
if _gpu_status is not None:
    _gpu_status.restype = c_int32
    _gpu_status.argtypes = [c_void_p, POINTER(mapcache_gpu_info)]


@dataclass(frozen=True)
class GpuStatus:
    """What :func:`gpu_status` reports.

    Attributes:
        active: rebuilds of tables at or above the threshold run on the GPU
            (the CUDA driver, a device and the plugin ``libmapcache_cuda.so``
            are there).
        reason: when active, the plugin's name and file (and the last GPU
            failure, if a rebuild has fallen back, even if later ones did
            not); otherwise why not: ``"off"``, ``"libcuda.so.1 not found ..."``, ``"no CUDA device:
            ..."``, ``"plugin not found at <path>"``, or the CUDA error of the
            step that failed.
        gpu_rebuilds: rebuilds this cache did on the GPU.
        fallbacks: rebuilds meant for the GPU that ran on the CPU instead:
            those whose GPU run failed, and also, under ``gpu="auto"``, every
            rebuild at or above the threshold while the engine is unavailable
            (no CUDA driver, no device, no plugin: ``active`` False). So it
            grows on a host without a GPU too; it is a sign of a failing GPU
            only while ``active`` is True. (A rebuild that finds the device
            busy with another shard's runs on the CPU and is counted in
            neither.)

    The plugin ``libmapcache_cuda.so`` is not in the wheel, which carries only
    ``libmapcache.so``: build it from the source tree with ``make cuda`` and
    put it beside the wheel's ``libmapcache.so`` (in the installed
    ``mapcache`` package directory), or name it with the ``gpu_plugin=``
    argument of :class:`mapcache.Cache`. Without it, ``gpu="auto"`` rebuilds on
    the CPU and ``gpu="force"`` raises :class:`mapcache.GpuError`, even on a
    host with a GPU.
    """

    active: bool
    reason: str
    gpu_rebuilds: int = 0
    fallbacks: int = 0


def gpu_status(cache: Cache) -> GpuStatus:
    """The GPU engine's status for ``cache``. Unless the cache's GPU mode is off
    this loads the engine if no rebuild has yet (once per process; a failure is
    kept and not retried). An unavailable engine is not an error: the cache
    rebuilds on the CPU. Raises :class:`CacheClosedError` on a closed cache.

    Loading reads the process's environment (the engine's
    ``MAPCACHE_GPU_SOURCE`` and ``MAPCACHE_CUDA_*`` settings, which nothing reads
    again, and the CUDA driver's variables, as it starts); without this call it
    happens when the cache is made with ``gpu="force"``, else at the first
    large rebuild, inside a write, on whichever thread made it. Assigning to
    ``os.environ`` calls C's ``setenv``, which is not safe against a concurrent
    ``getenv``: a program that changes its environment while other threads use
    caches should call this once at start-up."""
    if not isinstance(cache, Cache):
        raise TypeError(f"gpu_status() takes a mapcache.Cache, not {type(cache).__name__}")
    if _gpu_status is None:
        raise MapCacheError(f"{_lib.LIBRARY_PATH} predates the GPU engine (no mapcache_gpu_status)")
    info = mapcache_gpu_info()
    info.struct_size = sizeof(info)
    st = _gpu_status(cache._h, byref(info))
    if st:
        raise cache._error(st)
    return GpuStatus(
        active=bool(info.active),
        reason=info.reason.decode("utf-8", "replace"),
        gpu_rebuilds=info.gpu_rebuilds,
        fallbacks=info.fallbacks,
    )
