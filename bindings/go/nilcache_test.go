package mapcache

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// A nil *Cache and a zero Cache behave as a closed one: Close returns nil,
// every other method ErrClosed (or a closed cache's miss, 0 or zero Stats),
// and nothing panics. Every exported method of *Cache is called (the list is
// checked against the method set, so that a new method needs a line here).
func TestNilAndZeroCacheBehaveAsClosed(t *testing.T) {
	var nilCache *Cache
	caches := []struct {
		name string
		c    *Cache
	}{
		{"nil", nilCache},
		{"zero", new(Cache)},
		{"WithLabel of nil", nilCache.WithLabel("v")},
		{"WithLabel of zero", new(Cache).WithLabel("v")},
	}
	path := filepath.Join(t.TempDir(), "snap")
	k, v := []byte("k"), []byte("v")
	for _, cc := range caches {
		c := cc.c
		called := map[string]bool{}
		check := func(method string, err error) {
			t.Helper()
			called[method] = true
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s cache: %s = %v, want ErrClosed", cc.name, method, err)
			}
		}
		ok := func(method string, good bool) {
			t.Helper()
			called[method] = true
			if !good {
				t.Errorf("%s cache: %s did not behave as on a closed cache", cc.name, method)
			}
		}
		ok("Close", c.Close() == nil)
		ok("Close", c.Close() == nil) // twice
		val, hit := c.Get(k)
		ok("Get", val == nil && !hit)
		s, hit := c.GetString("k")
		ok("GetString", s == "" && !hit)
		_, _, err := c.Lookup(k)
		check("Lookup", err)
		_, _, err = c.AppendGet([]byte("x"), k)
		check("AppendGet", err)
		check("Set", c.Set(k, v))
		check("SetString", c.SetString("k", "v"))
		check("SetWithTTL", c.SetWithTTL(k, v, time.Second))
		_, _, err = c.Swap(k, v)
		check("Swap", err)
		_, err = c.Delete(k)
		check("Delete", err)
		_, err = c.Contains(k)
		check("Contains", err)
		ok("Len", c.Len() == 0)
		_, err = c.LenErr()
		check("LenErr", err)
		check("Clear", c.Clear())
		_, _, err = c.GetOrSet(k, v)
		check("GetOrSet", err)
		_, err = c.CompareAndSwap(k, v, v)
		check("CompareAndSwap", err)
		_, err = c.GetOrLoad(k, func() ([]byte, error) {
			t.Errorf("%s cache: GetOrLoad called its loader", cc.name)
			return v, nil
		})
		check("GetOrLoad", err)
		_, err = c.GetMany([][]byte{k})
		check("GetMany", err)
		check("SetMany", c.SetMany([][]byte{k}, [][]byte{v}))
		_, err = c.DeleteMany([][]byte{k})
		check("DeleteMany", err)
		check("Range", c.Range(func(_, _ []byte) bool {
			t.Errorf("%s cache: Range called fn", cc.name)
			return true
		}))
		n := 0
		for range c.All() {
			n++
		}
		ok("All", n == 0)
		for range c.Keys() {
			n++
		}
		ok("Keys", n == 0)
		ok("Stats", c.Stats() == Stats{})
		check("AdvanceClock", c.AdvanceClock(time.Second))
		_, err = c.GPUStatus()
		check("GPUStatus", err)
		check("Save", c.Save(path))
		_, err = c.SaveWithProgress(path, func(uint64) {
			t.Errorf("%s cache: SaveWithProgress called progress", cc.name)
		})
		check("SaveWithProgress", err)
		_, err = c.LoadInto(path)
		check("LoadInto", err)
		ok("Mode", c.Mode() == Concurrent)
		wantLabel := ""
		if c != nil && c.label != nil {
			wantLabel = "v"
		}
		ok("Label", c.Label() == wantLabel)
		view := c.WithLabel("w")
		ok("WithLabel", view != nil && view.Label() == "w" && view.Set(k, v) != nil && view.Close() == nil)

		var missing []string
		typ := reflect.TypeFor[*Cache]()
		for i := 0; i < typ.NumMethod(); i++ {
			if name := typ.Method(i).Name; !called[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			t.Errorf("%s cache: methods not checked: %v", cc.name, missing)
		}
	}
	// The slip this is for: Close deferred before the error is checked.
	func() {
		c, err := New(Config{MaxEntries: -1})
		defer c.Close()
		if !errors.Is(err, ErrInvalidConfig) || c != nil {
			t.Fatalf("New with MaxEntries -1: %v, %v", c, err)
		}
	}()
}
