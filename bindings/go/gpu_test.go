package mapcache

import (
	"errors"
	"strings"
	"testing"
)

// On a machine without an NVIDIA driver (or without the plugin beside the
// library) the engine is inactive, says why, and the cache works on the CPU.
func TestGPUStatusSaysWhyTheEngineIsInactive(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 20000; i++ {
		if err := c.Set([]byte{byte(i), byte(i >> 8)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.GPUStatus()
	if err != nil {
		t.Fatal(err)
	}
	if s.Active {
		t.Skipf("a GPU engine is active on this machine: %s", s.Reason)
	}
	if !strings.HasPrefix(s.Reason, "libcuda.so.1 not found") && !strings.HasPrefix(s.Reason, "plugin not found at ") &&
		!strings.HasPrefix(s.Reason, "no CUDA device") {
		t.Errorf("Reason = %q, want why the engine is inactive", s.Reason)
	}
	if s.GPURebuilds != 0 {
		t.Errorf("GPURebuilds = %d on an inactive engine", s.GPURebuilds)
	}
	if got, _ := c.Get([]byte{1, 0}); string(got) != "v" {
		t.Errorf("Get = %q", got)
	}
}

func TestGPUStatusAfterClose(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.GPUStatus(); !errors.Is(err, ErrClosed) {
		t.Errorf("GPUStatus after Close: err = %v, want ErrClosed", err)
	}
}
