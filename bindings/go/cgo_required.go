//go:build !cgo

package mapcache

// The binding is cgo: every other file of the package is built only with cgo
// (those that import "C" implicitly, the others by their //go:build cgo
// line). Without it (CGO_ENABLED=0, which is also Go's default when
// cross-compiling and when no C compiler is found) this file is the package,
// and its undefined name is the build's one error, which says what to do:
//
//	undefined: mapcache_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
var _ = mapcache_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
