//go:build mapcache_shared && !mapcache_pkgconfig

package mapcache

// Dynamic linking, selected with `-tags mapcache_shared`: the binary loads
// libmapcache.so at run time. The rpath points at the repository's
// target/release; a deployed binary finds the library through the usual
// loader search (LD_LIBRARY_PATH, /etc/ld.so.conf), and CGO_LDFLAGS may add
// -L/-rpath for another install location.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -lmapcache
*/
import "C"
