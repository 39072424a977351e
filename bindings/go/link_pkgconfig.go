//go:build mapcache_pkgconfig

package mapcache

// Linking an installed library, selected with `-tags mapcache_pkgconfig`: the
// compiler and linker flags come from pkg-config's mapcache.pc, which `make
// install` writes to <prefix>/lib/pkgconfig. This is how a Go module outside
// this repository builds the binding: install the library, make sure
// pkg-config finds mapcache.pc (PKG_CONFIG_PATH for a prefix it does not
// search), and `go build -tags mapcache_pkgconfig`. The binary links
// libmapcache.so.<ABI version> dynamically; the loader finds it where
// ldconfig or LD_LIBRARY_PATH points, or through an rpath
// (CGO_LDFLAGS="-Wl,-rpath,<prefix>/lib").

/*
#cgo pkg-config: mapcache
*/
import "C"
