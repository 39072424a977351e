package mapcache

// The GPU engine's status. Its one cgo call is here rather than in capi.go
// (which holds every other), so that the GPU engine's binding is one file; it
// follows capi.go's rules: the C struct is on the Go side only for the call
// and holds no Go pointer.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -O2
#cgo noescape mcg_gpu_status
#cgo nocallback mcg_gpu_status
#include "mapcache.h"

static mapcache_status mcg_gpu_status(void *h, mapcache_gpu_info *out) {
	out->struct_size = sizeof *out;
	return mapcache_gpu_status((mapcache_t *)h, out);
}
*/
import "C"

import "unsafe"

// GPUMode is Config.GPU.
type GPUMode uint32

const (
	// GPUAuto rebuilds large tables on the GPU when it can, else on the CPU.
	GPUAuto GPUMode = 0
	// GPUOff never uses the GPU (nothing is loaded).
	GPUOff GPUMode = 1
	// GPUForce uses the GPU or fails: New, and a write whose rebuild fails
	// on the GPU, return an *Error matching ErrGPU (Status 16,
	// MAPCACHE_E_GPU) whose message says why; the write changed nothing.
	GPUForce GPUMode = 2
)

// GPUStatus says whether a cache rebuilds its large tables on the GPU and, if
// not, why. See the C ABI's mapcache_gpu_status.
type GPUStatus struct {
	// Active: rebuilds of tables at or above the threshold run on the GPU
	// (the CUDA driver, a device and the plugin libmapcache_cuda.so are there).
	Active bool
	// Reason: when active, the plugin's name and file (and the last GPU
	// failure, if a rebuild has fallen back, even if later ones did not);
	// otherwise why not: "off", "libcuda.so.1 not found ...", "no CUDA
	// device: ...", "plugin not found at <path>", or the CUDA error of the
	// step that failed.
	Reason string
	// GPURebuilds counts the rebuilds this cache did on the GPU.
	GPURebuilds uint64
	// Fallbacks counts the rebuilds meant for the GPU that ran on the CPU.
	Fallbacks uint64
}

// GPUStatus reports the GPU engine's status. Unless the GPU is off, it loads
// the engine if no rebuild has yet (once per process; a failure is kept and
// not retried). The engine being unavailable is not an error: the cache then
// rebuilds on the CPU. The error is ErrClosed after Close.
//
// Loading reads the process's environment (the engine's MAPCACHE_GPU_SOURCE
// and MAPCACHE_CUDA_* settings, which nothing reads again, and the CUDA
// driver's variables, as it starts); without this call it happens in New
// under GPUForce, else at the first large rebuild, inside a write, on the
// thread of whichever goroutine made it. With cgo, os.Setenv calls C's setenv,
// which is not safe against a concurrent getenv: a program that calls
// os.Setenv while caches are in use should call GPUStatus once at start-up,
// before it does.
func (c *Cache) GPUStatus() (GPUStatus, error) {
	co := c.core()
	if !co.acquire() {
		return GPUStatus{}, closedErr("GPUStatus")
	}
	var info C.mapcache_gpu_info
	st := C.mcg_gpu_status(co.h, &info)
	co.release()
	if st != stOK {
		return GPUStatus{}, newError("GPUStatus", int32(st), "mapcache_gpu_status failed")
	}
	return GPUStatus{
		Active:      info.active != 0,
		Reason:      C.GoString((*C.char)(unsafe.Pointer(&info.reason[0]))),
		GPURebuilds: uint64(info.gpu_rebuilds),
		Fallbacks:   uint64(info.fallbacks),
	}, nil
}
