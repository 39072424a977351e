//go:build !mapcache_shared && !mapcache_pkgconfig

package mapcache

// Static linking (the default): the Rust library is linked into the Go binary,
// which then needs no libmapcache.so at run time. The extra system libraries are
// those `cargo rustc --release --lib --crate-type staticlib -- --print
// native-static-libs` lists for the Rust standard library.

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libmapcache.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
