"""Builds the wheel: the ctypes package, and libmapcache.so compiled from this
repository's Rust crate by setuptools-rust and put inside the package.

The metadata is in pyproject.toml; this file only says what setuptools-rust
builds, and two things a ctypes package needs that an extension module does not
(docs/ARCHITECTURE.md, "Packaging", says why setuptools-rust).
"""

import os
import sys

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools_rust import Binding, RustExtension, Strip, build_rust

if sys.platform == "darwin":
    LIBRARY_FILE = "libmapcache.dylib"
elif sys.platform == "win32":
    LIBRARY_FILE = "mapcache.dll"
else:
    LIBRARY_FILE = "libmapcache.so"


class build_rust_library(build_rust):
    """Puts the library at mapcache/libmapcache.so, the name the package loads
    (mapcache._lib), rather than at the name of an extension module for this
    interpreter (libmapcache.cpython-311-x86_64-linux-gnu.so): it is a plain C
    library, which any Python version loads through ctypes."""

    def get_dylib_ext_path(self, ext, target_fname):
        path = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(path), LIBRARY_FILE)


class bdist_wheel_any_python(bdist_wheel):
    """Tags the wheel py3-none-<platform>: the library depends on the platform
    only, not on the Python version or its C API (there is no extension
    module). `make wheel` then lets auditwheel replace linux_x86_64 with the
    manylinux tag the library actually satisfies."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    rust_extensions=[
        RustExtension(
            "mapcache.libmapcache",
            path="../../Cargo.toml",
            binding=Binding.NoBinding,
            # The crate's own crate types (Cargo.toml [lib]), not setuptools-rust's
            # default of cdylib alone: cargo then sees the same build as
            # `cargo build --release --lib` (make lib) and reuses it, instead of
            # rebuilding the library each time one or the other runs.
            args=["--crate-type", "rlib", "--crate-type", "cdylib", "--crate-type", "staticlib"],
            py_limited_api=False,
            # The release profile keeps line tables (debug = 1) for backtraces
            # in development; the wheel ships the library without them.
            strip=Strip.Debug,
        )
    ],
    cmdclass={"build_rust": build_rust_library, "bdist_wheel": bdist_wheel_any_python},
    zip_safe=False,
)
