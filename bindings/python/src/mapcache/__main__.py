"""``python -m mapcache``: print the library's version, ABI version and location."""

from __future__ import annotations

import sys

import mapcache


def main() -> int:
    print(f"mapcache (Python package) {mapcache.__version__}")
    print(f"library version: {mapcache.library_version()}")
    print(f"ABI version:     {mapcache.abi_version()} (binding expects {mapcache.ABI_VERSION})")
    print(f"loaded from:     {mapcache.library_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
