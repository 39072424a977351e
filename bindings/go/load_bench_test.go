package mapcache

import "testing"

// What GetOrLoad adds over Get on a hit (the cost of the handle, the failure
// table's bookkeeping and the pooled buffer), and the cost of a load: one
// key, so that the table's cache misses do not hide the binding's work.
//
//	go test -run '^$' -bench 'HotKey' -cpu 1,2 -benchmem
func BenchmarkGetHotKey(b *testing.B) {
	c := newCache(b, Config{})
	key := []byte("hot-key-16-bytes")
	c.Set(key, make([]byte, benchValLen))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(key)
		}
	})
}

func BenchmarkGetOrLoadHotKey(b *testing.B) {
	c := newCache(b, Config{})
	key := []byte("hot-key-16-bytes")
	load := func() ([]byte, error) { return make([]byte, benchValLen), nil }
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetOrLoad(key, load); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A miss every time: the load and the store through the callback.
func BenchmarkGetOrLoadMiss(b *testing.B) {
	c := newCache(b, Config{})
	key := []byte("hot-key-16-bytes")
	load := func() ([]byte, error) { return make([]byte, benchValLen), nil }
	for i := 0; i < b.N; i++ {
		if _, err := c.GetOrLoad(key, load); err != nil {
			b.Fatal(err)
		}
		c.Delete(key)
	}
}
