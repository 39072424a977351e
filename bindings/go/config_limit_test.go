package mapcache

import (
	"errors"
	"strings"
	"testing"
)

// InitialCapacity above the library's MAPCACHE_MAX_INITIAL_CAPACITY (2^30) is
// refused up front, with nothing allocated: ErrInvalidConfig naming the field
// and the limit.
func TestInitialCapacityOverTheLimitIsInvalidConfig(t *testing.T) {
	for _, capacity := range []uint64{1<<30 + 1, 1 << 62, ^uint64(0)} {
		c, err := New(Config{InitialCapacity: capacity})
		if err == nil {
			c.Close()
			t.Fatalf("InitialCapacity %d was accepted", capacity)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("InitialCapacity %d: %v, want ErrInvalidConfig", capacity, err)
		}
		for _, want := range []string{"initial_capacity", "1073741824"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("InitialCapacity %d: %q does not mention %q", capacity, err, want)
			}
		}
	}
}
