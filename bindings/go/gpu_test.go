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

func TestGPUModesAndPluginPath(t *testing.T) {
	off, err := New(Config{GPU: GPUOff})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if s, _ := off.GPUStatus(); s.Active || s.Reason != "off" {
		t.Errorf("GPUOff: status %+v", s)
	}

	missing := "/nonexistent/libmapcache_cuda.so"
	if _, err := New(Config{GPU: GPUForce, GPUPlugin: missing}); !errors.Is(err, ErrGPU) || !strings.Contains(err.Error(), "GPU engine") {
		t.Errorf("GPUForce without an engine: err = %v, want ErrGPU with the GPU engine's error", err)
	}

	auto, err := New(Config{GPUPlugin: missing, GPUThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	for i := 0; i < 5000; i++ {
		if err := auto.Set([]byte{byte(i), byte(i >> 8)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := auto.GPUStatus()
	if s.Active || s.Fallbacks == 0 || auto.Len() != 5000 {
		t.Errorf("auto with a missing plugin: status %+v, Len %d", s, auto.Len())
	}
	if !strings.HasPrefix(s.Reason, "libcuda.so.1 not found") && s.Reason != "plugin not found at "+missing {
		t.Errorf("Reason = %q", s.Reason)
	}
}

// GPUForce where the engine cannot load (no libcuda.so.1, no device, or no
// plugin beside the library): New fails with an *Error matching ErrGPU, status
// 16 (MAPCACHE_E_GPU), whose message says why.
func TestGPUForceWithoutAnEngineIsErrGPU(t *testing.T) {
	c, err := New(Config{GPU: GPUForce})
	if err == nil {
		s, _ := c.GPUStatus()
		c.Close()
		if s.Active {
			t.Skipf("a GPU engine is active on this machine: %s", s.Reason)
		}
		t.Fatalf("GPUForce: New succeeded with an inactive engine (%+v)", s)
	}
	var e *Error
	if !errors.Is(err, ErrGPU) || !errors.As(err, &e) || e.Status != 16 || e.Op != "New" {
		t.Fatalf("GPUForce without an engine: %v (%#v), want an *Error from New matching ErrGPU with Status 16", err, err)
	}
	if errors.Is(err, ErrInternal) || e.Message == "" {
		t.Errorf("GPUForce: %#v, want only ErrGPU and the library's reason", e)
	}
}

// A plugin path with a NUL byte: C saw the path cut at the NUL, naming
// another file ("/nonexistent/a.so" for the second), and New went on with
// it. It is ErrInvalidConfig, from New and Load alike.
func TestGPUPluginPathWithNULIsErrInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{GPUPlugin: "\x00/evil/libmapcache_cuda.so"},
		{GPU: GPUForce, GPUPlugin: "/nonexistent/a.so\x00b"},
	} {
		c, err := New(cfg)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(GPUPlugin %q) = %v, want ErrInvalidConfig", cfg.GPUPlugin, err)
		}
		if _, err := Load("/nonexistent.snap", cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Load(GPUPlugin %q) = %v, want ErrInvalidConfig", cfg.GPUPlugin, err)
		}
	}
}
