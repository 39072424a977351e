#!/usr/bin/env bash
# The wheel as a user meets it (make test-wheel): installed into a fresh virtual
# environment in a temporary directory outside the repository (no
# --system-site-packages, nothing from PyPI), imported from a working directory
# outside the repository with MAPCACHE_LIBRARY unset, it loads the library it
# carries and stores and reads a value.
#
# usage: test_wheel.sh dist/mapcache-<version>-<tags>.whl
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }

test $# -eq 1 || fail "want exactly one wheel, got: $*"
wheel=$1
test -f "$wheel" || fail "no wheel at $wheel"
name=$(basename "$wheel")
step "wheel: $name"
# An honest platform wheel: any Python 3, no Python ABI, a manylinux x86_64 tag
# that auditwheel derived from the library.
[[ $name =~ ^mapcache-[0-9.]+-py3-none-manylinux_[0-9]+_[0-9]+_x86_64\.whl$ ]] \
  || fail "unexpected tags in $name"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mapcache-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case "$tmp" in "$ROOT"/*) fail "temporary directory $tmp is inside the repository" ;; esac

step "fresh virtual environment: $tmp/venv"
"$PYTHON" -m venv "$tmp/venv"
venv_py=$tmp/venv/bin/python
"$venv_py" -m pip -q --disable-pip-version-check install --no-index --no-deps "$wheel"

mkdir "$tmp/work"
cd "$tmp/work"
step "import from $PWD, MAPCACHE_LIBRARY unset"
out=$(env -u MAPCACHE_LIBRARY -u PYTHONPATH "$venv_py" - <<'EOF'
import mapcache, pathlib, sys

with mapcache.Cache() as c:
    c["user:42"] = b"Ada"
    value = c["user:42"]
assert value == b"Ada", value
package_dir = pathlib.Path(mapcache.__file__).resolve().parent
print(f"value: {value!r}")
print(f"package: {package_dir}")
print(f"library loaded from: {mapcache.library_path()}")
print(f"prefix: {sys.prefix}")
EOF
)
echo "$out" | sed 's/^/   /'
library=$(sed -n 's/^library loaded from: //p' <<<"$out")
package=$(sed -n 's/^package: //p' <<<"$out")
test "$library" = "$package/libmapcache.so" || fail "the library was not loaded from the installed package"
case "$package" in "$tmp/venv/"*) ;; *) fail "mapcache was imported from $package, not from the fresh venv" ;; esac

step "python -m mapcache"
env -u MAPCACHE_LIBRARY -u PYTHONPATH "$venv_py" -m mapcache | sed 's/^/   /'

echo "test-wheel: passed"
