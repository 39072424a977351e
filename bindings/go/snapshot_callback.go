package mapcache

// The progress callback of a save, exported to C. It lives in a file of its
// own because a file with //export may declare, but not define, C functions in
// its preamble; the C trampoline that calls it (mcg_progress) is in capi.go.

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// mcgGoProgress reports bytesWritten to the progress function of the save
// whose cgo.Handle is h. A panic or runtime.Goexit in that function is caught
// in saveProgress.report, never unwound into C.
//
//export mcgGoProgress
func mcgGoProgress(h C.uintptr_t, bytesWritten C.uint64_t) {
	cgo.Handle(h).Value().(*saveProgress).report(uint64(bytesWritten))
}
