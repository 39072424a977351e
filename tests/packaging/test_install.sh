#!/usr/bin/env bash
# `make install` as a user of each language meets it (make test-install):
#
# 1. `make install PREFIX=<tmp>/prefix` installs the header, libmapcache.so.<ABI>
#    (its SONAME) with the libmapcache.so link, libmapcache.a and mapcache.pc;
# 2. a C program outside the repository builds with pkg-config against it, once
#    dynamically (it needs libmapcache.so.<ABI> at run time) and once statically
#    (it needs nothing), and both run;
# 3. a Go module in a temporary directory outside the repository requires the
#    binding (a copy of its sources, as the module cache would hold them, without
#    this repository's include/ or target/ next to them) and builds with
#    `-tags mapcache_pkgconfig` against the same prefix, and runs;
# 4. DESTDIR stages the same files under a root without changing what they say;
# 5. `make uninstall` removes every file `make install` put there;
# 6. the GPU plugin libmapcache_cuda.so: `make install` puts it beside
#    libmapcache.so (where the library looks for it) when `make cuda` has built
#    it, and says that it is not built otherwise (the core needs none). Step 1
#    checks whichever is the case in this tree; the DESTDIR step installs a
#    stand-in file named by CUDA_PLUGIN, so that the copy and its removal are
#    checked without `make cuda`;
# 7. the installed library finds its plugin where the header says (the
#    directory of libmapcache.so) with no gpu_plugin_path: a C program against
#    a prefix holding the plugin built without CUDA (its emulated device, which
#    opens only with MAPCACHE_CUDA_EMULATE=1) and the stub driver as
#    libcuda.so.1 (mk/cuda.mk, cuda-stub: C only, no CUDA) sees the GPU engine
#    active with that file, sees it refuse to open without the variable, sees
#    "plugin not found at <prefix>/lib/..." once it is removed, and "libcuda.so.1
#    not found" without a driver; statically linked, the program looks beside
#    itself, however it was started (./prog, from PATH, from elsewhere).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/packaging
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mapcache-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case "$tmp" in "$ROOT"/*) echo "temporary directory $tmp is inside the repository"; exit 1 ;; esac

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }

prefix=$tmp/prefix
step "make install PREFIX=$prefix"
$MAKE -C "$ROOT" --no-print-directory install PREFIX="$prefix" | tee "$tmp/install.log"

abi=$(sed -n 's/^#define MAPCACHE_ABI_VERSION \([0-9]*\)$/\1/p' "$ROOT/include/mapcache.h")
test -n "$abi" || fail "no MAPCACHE_ABI_VERSION in include/mapcache.h"
soname=libmapcache.so.$abi
step "installed files (SONAME expected: $soname)"
(cd "$prefix" && find . \( -type f -o -type l \) | sort | sed 's/^/   /')
for f in include/mapcache.h lib/$soname lib/libmapcache.a lib/pkgconfig/mapcache.pc; do
  test -f "$prefix/$f" || fail "$f not installed"
done
test -L "$prefix/lib/libmapcache.so" || fail "lib/libmapcache.so is not a link"
test "$(readlink "$prefix/lib/libmapcache.so")" = "$soname" || fail "libmapcache.so does not point at $soname"
got=$(readelf -d "$prefix/lib/$soname" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
test "$got" = "$soname" || fail "SONAME of lib/$soname is '$got'"
cmp -s "$ROOT/include/mapcache.h" "$prefix/include/mapcache.h" || fail "installed header differs"

plugin=$ROOT/target/cuda/gpu-check/libmapcache_cuda.so
if [ -f "$plugin" ]; then
  step "GPU plugin: built by make cuda, installed beside libmapcache.so"
  cmp -s "$plugin" "$prefix/lib/libmapcache_cuda.so" || fail "lib/libmapcache_cuda.so is not $plugin"
  test -x "$prefix/lib/libmapcache_cuda.so" || fail "lib/libmapcache_cuda.so is not executable"
else
  step "GPU plugin: not built (no make cuda), not installed, and install says so"
  test ! -e "$prefix/lib/libmapcache_cuda.so" || fail "lib/libmapcache_cuda.so installed, but no plugin was built"
  grep -q "libmapcache_cuda.so not built" "$tmp/install.log" || fail "install did not say the GPU plugin is not built"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
unset LD_LIBRARY_PATH
step "pkg-config: $(pkg-config --modversion mapcache); --cflags --libs: $(pkg-config --cflags --libs mapcache)"
step "pkg-config --static: $(pkg-config --static --define-variable=libname=:libmapcache.a --libs mapcache)"

work=$tmp/c
mkdir -p "$work"
cp "$HERE/hello.c" "$work/"
cd "$work"

step "C, dynamic: cc hello.c \$(pkg-config --cflags --libs mapcache)"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o hello hello.c $(pkg-config --cflags --libs mapcache)
readelf -d hello | grep -q "NEEDED.*\[$soname\]" || fail "the dynamic build does not need $soname"
if ./hello >/dev/null 2>&1; then fail "the dynamic build ran without the library on the loader's path"; fi
out=$(LD_LIBRARY_PATH=$prefix/lib ./hello)
echo "   $out"
grep -q "user:42 = Ada" <<<"$out" || fail "unexpected output"
loaded=$(LD_LIBRARY_PATH=$prefix/lib ldd ./hello | sed -n "s/.*$soname => \([^ ]*\).*/\1/p")
test "$loaded" = "$prefix/lib/$soname" || fail "loaded $loaded, not the installed library"

step "C, static: cc hello.c \$(pkg-config --cflags --libs --static --define-variable=libname=:libmapcache.a mapcache)"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o hello_static hello.c \
  $(pkg-config --cflags --libs --static --define-variable=libname=:libmapcache.a mapcache)
if readelf -d hello_static | grep -q "NEEDED.*libmapcache"; then fail "the static build needs libmapcache"; fi
out=$(./hello_static)
echo "   $out"
grep -q "user:42 = Ada" <<<"$out" || fail "unexpected output"

step "Go: a module outside the repository, go build -tags mapcache_pkgconfig"
# The binding as a module proxy would deliver it: its .go files and go.mod, and
# nothing of this repository around it.
binding=$tmp/gomod/cache/mapcache-go
mkdir -p "$binding"
cp "$ROOT/bindings/go/go.mod" "$binding/"
for f in "$ROOT"/bindings/go/*.go; do
  case "$f" in *_test.go) ;; *) cp "$f" "$binding/" ;; esac
done
app=$tmp/gomod/hello
mkdir -p "$app"
cp "$HERE/hello_go/main.go" "$app/"
cd "$app"
go mod init example.com/hello >/dev/null 2>&1
go mod edit -require=github.com/mapcache/mapcache-go@v0.0.0 -replace=github.com/mapcache/mapcache-go="$binding"
GOFLAGS=-mod=mod go build -buildvcs=false -tags mapcache_pkgconfig -o hello .
readelf -d hello | grep -q "NEEDED.*\[$soname\]" || fail "the Go program does not need $soname"
out=$(LD_LIBRARY_PATH=$prefix/lib ./hello)
echo "   $out"
grep -q "user:42 = Ada" <<<"$out" || fail "unexpected output"

step "DESTDIR: make install DESTDIR=$tmp/stage PREFIX=/opt/mapcache"
# A stand-in for the plugin make cuda builds: install copies it, whatever it holds.
fake_plugin=$tmp/fake-cuda/libmapcache_cuda.so
mkdir -p "$(dirname "$fake_plugin")"
echo "stand-in for libmapcache_cuda.so" >"$fake_plugin"
$MAKE -C "$ROOT" --no-print-directory install DESTDIR="$tmp/stage" PREFIX=/opt/mapcache CUDA_PLUGIN="$fake_plugin"
test -f "$tmp/stage/opt/mapcache/lib/$soname" || fail "DESTDIR install missing lib/$soname"
cmp -s "$fake_plugin" "$tmp/stage/opt/mapcache/lib/libmapcache_cuda.so" \
  || fail "the GPU plugin (CUDA_PLUGIN) was not installed beside libmapcache.so"
test -x "$tmp/stage/opt/mapcache/lib/libmapcache_cuda.so" || fail "the staged GPU plugin is not executable"
grep -qx "prefix=/opt/mapcache" "$tmp/stage/opt/mapcache/lib/pkgconfig/mapcache.pc" \
  || fail "the staged mapcache.pc does not say prefix=/opt/mapcache"
$MAKE -C "$ROOT" --no-print-directory uninstall DESTDIR="$tmp/stage" PREFIX=/opt/mapcache
left=$(find "$tmp/stage" \( -type f -o -type l \))
test -z "$left" || fail "uninstall (DESTDIR) left: $left"

step "GPU plugin: found beside the installed libmapcache.so"
$MAKE -C "$ROOT" --no-print-directory cuda-stub >/dev/null
(cd "$ROOT" && cargo build --release --quiet -p mapcache-cuda)
driver=$tmp/driver
mkdir -p "$driver"
cp "$ROOT/target/cuda/stub/lib64/libcuda.so" "$driver/libcuda.so.1"
gpu_prefix=$tmp/gpu-prefix
$MAKE -C "$ROOT" --no-print-directory install PREFIX="$gpu_prefix" \
  CUDA_PLUGIN="$ROOT/target/release/libmapcache_cuda.so" >/dev/null 2>&1
export PKG_CONFIG_PATH=$gpu_prefix/lib/pkgconfig
work=$tmp/gpu
mkdir -p "$work"
cd "$work"
cp "$HERE/gpu_status.c" .
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o gpu_status gpu_status.c $(pkg-config --cflags --libs mapcache)
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o gpu_status_static gpu_status.c \
  $(pkg-config --cflags --libs --static --define-variable=libname=:libmapcache.a mapcache)
expect() { # what, expected substring, output
  echo "   $1: $3"
  grep -qF -- "$2" <<<"$3" || fail "$1: expected \"$2\""
}
installed=$gpu_prefix/lib/libmapcache_cuda.so
out=$(LD_LIBRARY_PATH=$gpu_prefix/lib:$driver MAPCACHE_CUDA_EMULATE=1 ./gpu_status)
expect "plugin installed" "active=1 reason=active: mapcache-cuda (emulated device) ($installed)" "$out"
out=$(LD_LIBRARY_PATH=$gpu_prefix/lib:$driver ./gpu_status)
expect "plugin installed, emulation not allowed" "active=0 reason=no CUDA device: this libmapcache_cuda.so was built without CUDA" "$out"
out=$(LD_LIBRARY_PATH=$gpu_prefix/lib ./gpu_status)
expect "no driver" "active=0 reason=libcuda.so.1 not found" "$out"
# Statically linked, the library is the program: the plugin beside it,
# however the program was started (its directory, PATH, elsewhere).
out=$(LD_LIBRARY_PATH=$driver MAPCACHE_CUDA_EMULATE=1 ./gpu_status_static)
expect "static, as ./prog" "active=0 reason=plugin not found at $work/libmapcache_cuda.so" "$out"
out=$(cd / && PATH=$work:$PATH LD_LIBRARY_PATH=$driver MAPCACHE_CUDA_EMULATE=1 gpu_status_static)
expect "static, from PATH" "active=0 reason=plugin not found at $work/libmapcache_cuda.so" "$out"
cp "$installed" "$work/"
out=$(cd "$tmp" && LD_LIBRARY_PATH=$driver MAPCACHE_CUDA_EMULATE=1 ./gpu/gpu_status_static)
expect "static, plugin beside it" "active=1 reason=active: mapcache-cuda (emulated device) ($work/libmapcache_cuda.so)" "$out"
rm "$installed"
out=$(LD_LIBRARY_PATH=$gpu_prefix/lib:$driver MAPCACHE_CUDA_EMULATE=1 ./gpu_status)
expect "plugin removed" "active=0 reason=plugin not found at $installed" "$out"
$MAKE -C "$ROOT" --no-print-directory uninstall PREFIX="$gpu_prefix" >/dev/null 2>&1
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

step "make uninstall PREFIX=$prefix"
$MAKE -C "$ROOT" --no-print-directory uninstall PREFIX="$prefix"
left=$(find "$prefix" \( -type f -o -type l \))
test -z "$left" || fail "uninstall left: $left"

echo "test-install: passed"
