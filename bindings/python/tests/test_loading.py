"""Finding and loading the library; `python -m mapcache`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import mapcache
from mapcache import _lib

from conftest import run_python


def test_versions_and_path():
    assert mapcache.abi_version() == mapcache.ABI_VERSION == 3
    v = mapcache.library_version()
    assert v and v[0].isdigit()
    assert mapcache.library_path().is_file()


def test_python_dash_m_prints_versions_and_location():
    proc = run_python("import runpy; runpy.run_module('mapcache', run_name='__main__')")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"library version: {mapcache.library_version()}" in out
    assert "ABI version:     3" in out
    assert str(mapcache.library_path()) in out


def test_environment_variable_wins(tmp_path):
    copy = tmp_path / "renamed-libmapcache.so"
    shutil.copy(mapcache.library_path(), copy)
    proc = run_python("import mapcache; print(mapcache.library_path())",
                      {"MAPCACHE_LIBRARY": str(copy)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(copy.resolve())


def test_a_wrong_environment_variable_is_an_import_error(tmp_path):
    missing = tmp_path / "nope.so"
    proc = run_python(
        "import mapcache",
        {"MAPCACHE_LIBRARY": str(missing)},
    )
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr and "MAPCACHE_LIBRARY" in proc.stderr


def test_package_directory_comes_before_the_repository(tmp_path):
    # A copy of the package with the library next to it (as a wheel that
    # bundles it would be) loads that one.
    pkg = tmp_path / "site" / "mapcache"
    shutil.copytree(Path(mapcache.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(mapcache.library_path(), pkg / _lib.LIBRARY_NAME)
    proc = run_python(
        "import mapcache; print(mapcache.library_path())",
        {"MAPCACHE_LIBRARY": None, "PYTHONPATH": str(tmp_path / "site")},
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str((pkg / _lib.LIBRARY_NAME).resolve())


def test_no_directory_above_the_package_is_searched(tmp_path):
    # A package without its library, sitting below a directory that has
    # target/release/libmapcache.so (a checkout, a venv inside one), does not
    # load that library: the package directory and MAPCACHE_LIBRARY are the
    # only places, and the error names both.
    repo = tmp_path / "repo"
    (repo / "target" / "release").mkdir(parents=True)
    shutil.copy(mapcache.library_path(), repo / "target" / "release" / _lib.LIBRARY_NAME)
    site = repo / ".venv" / "lib" / "site-packages"
    shutil.copytree(Path(mapcache.__file__).parent, site / "mapcache",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    proc = run_python(
        "import mapcache; print(mapcache.library_path())",
        {"MAPCACHE_LIBRARY": None, "PYTHONPATH": str(site)},
        cwd=str(repo),
    )
    assert proc.returncode != 0, proc.stdout
    assert "LibraryNotFoundError" in proc.stderr
    assert str(site / "mapcache" / _lib.LIBRARY_NAME) in proc.stderr
    assert "MAPCACHE_LIBRARY is not set" in proc.stderr
    assert "target" not in proc.stderr.split("LibraryNotFoundError", 1)[1]


def test_the_candidates_are_the_package_directory_only():
    here = Path(_lib.__file__).resolve().parent
    assert _lib.candidate_paths() == [here / _lib.LIBRARY_NAME]


def test_nothing_found_lists_where_it_looked(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(Path(mapcache.__file__).parent, site / "mapcache",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    proc = run_python("import mapcache", {"MAPCACHE_LIBRARY": None, "PYTHONPATH": str(site)},
                      cwd=str(tmp_path))
    assert proc.returncode != 0
    assert "not found" in proc.stderr and str(site / "mapcache") in proc.stderr


def test_a_library_without_the_symbols_is_rejected():
    libc = "libc.so.6" if sys.platform.startswith("linux") else None
    if libc is None:
        pytest.skip("needs glibc")
    with pytest.raises(mapcache.LibraryNotFoundError, match="lacks the symbols"):
        _lib.load(Path(libc))


def test_an_unloadable_file_is_rejected(tmp_path):
    bogus = tmp_path / "libmapcache.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(mapcache.LibraryNotFoundError, match="cannot load"):
        _lib.load(bogus)


def test_loaded_with_cdll_not_pydll():
    import ctypes

    # CDLL functions release the GIL; PyDLL's would not.
    assert type(_lib.lib) is ctypes.CDLL
    assert _lib.lib.mapcache_get._flags_ & ctypes._FUNCFLAG_PYTHONAPI == 0


def test_every_prototype_is_declared():
    for name, (restype, argtypes) in _lib._PROTOTYPES.items():
        if name in _lib.OPTIONAL and not hasattr(_lib.lib, name):
            continue
        fn = getattr(_lib.lib, name)
        assert fn.restype is restype and fn.argtypes == argtypes, name


def test_the_installed_package_carries_its_library():
    # make test-python installs the wheel (make wheel): the library it loads is
    # the one inside the installed package, not one found elsewhere.
    if os.environ.get("MAPCACHE_LIBRARY"):
        pytest.skip("MAPCACHE_LIBRARY is set")
    package_dir = Path(mapcache.__file__).resolve().parent
    assert mapcache.library_path() == package_dir / _lib.LIBRARY_NAME


def test_an_empty_environment_variable_is_an_import_error():
    # Set but empty is a mistake too, not "unset": no silent fallback.
    proc = run_python("import mapcache", {"MAPCACHE_LIBRARY": ""})
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr and "set but empty" in proc.stderr
