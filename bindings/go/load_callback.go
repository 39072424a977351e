package mapcache

// The loader callback of GetOrLoad, exported to C. It lives in a file of its
// own because a file with //export may declare, but not define, C functions in
// its preamble; the C trampoline that calls it (mcg_loader) is in capi.go.

/*
#include <stdint.h>
#include "mapcache.h"
*/
import "C"

import "runtime/cgo"

// mcgGoLoad runs the loader of the GetOrLoad call whose cgo.Handle is h and
// returns the C loader's status: 0 with the value handed to result, or the
// non-zero token under which the failure is kept (see load.go). A panic in
// the loader is recovered in loadCall.run, never unwound into C.
//
//export mcgGoLoad
func mcgGoLoad(h C.uintptr_t, result *C.mapcache_load_result) C.int32_t {
	lc := cgo.Handle(h).Value().(*loadCall)
	return C.int32_t(lc.run(func(v []byte) cres { return cLoadResultSet(result, v) }))
}
