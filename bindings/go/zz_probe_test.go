package mapcache

import "testing"

func TestProbeAllocs(t *testing.T) {
	c, _ := New(Config{})
	defer c.Close()
	c.Set([]byte("big"), make([]byte, 1000))
	c.Set([]byte("small"), make([]byte, 10))
	k := []byte("big")
	ks := []byte("small")
	t.Log("big", testing.AllocsPerRun(1000, func() { c.Get(k) }))
	t.Log("small", testing.AllocsPerRun(1000, func() { c.Get(ks) }))
	dst := make([]byte, 0, 2000)
	t.Log("append", testing.AllocsPerRun(1000, func() { c.AppendGet(dst, k) }))
}
