package mapcache

// BenchmarkGC5M holds 5M entries (16-byte keys, 32-byte values) in a
// map[string][]byte or in a mapcache Cache and measures what the garbage
// collector spends on it:
//
//   - churn: each op is one random lookup plus a 1 KiB short-lived
//     allocation (a request's garbage), so GC cycles come at the pace the
//     runtime chooses;
//   - forced: 10 full runtime.GC() cycles (whatever b.N is; its ns/op is
//     meaningless, read gc-cpu-ms/cycle).
//
// Reported: gc-cpu-ms (total GC CPU time over the timed run, from
// runtime/metrics /cpu/classes/gc/total:cpu-seconds), max-pause-us (longest
// stop-the-world pause, from debug.ReadGCStats), gcs (cycles) and live-heap-MB.
//
//	go test -run '^$' -bench GC5M -benchtime 3000000x -cpu 2

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const gcEntries = 5_000_000

type gcStore interface {
	lookup(i int) bool
}

type gcMap map[string][]byte

func (m gcMap) lookup(i int) bool { _, ok := m[string(benchKey(i%gcEntries))]; return ok }

type gcCache struct {
	c   *Cache
	buf []byte
}

func (g *gcCache) lookup(i int) bool {
	_, ok, _ := g.c.AppendGet(g.buf[:0], benchKey(i%gcEntries))
	return ok
}

var gcSink []byte

func gcCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}

// churnGarbage is the short-lived allocation of each churn op: enough that
// the Go map's 600 MB live heap also goes through several GC cycles.
const churnGarbage = 1024

// forcedCycles is how many full GC cycles a forced run makes (b.N is ignored).
const forcedCycles = 10

func measureGC(b *testing.B, store gcStore, forced bool) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := float64(ms.HeapAlloc) / (1 << 20)
	var before debug.GCStats
	debug.ReadGCStats(&before)
	cpu0 := gcCPUSeconds()
	b.ResetTimer()
	hits := 0
	if forced {
		for i := 0; i < forcedCycles; i++ {
			runtime.GC()
		}
	} else {
		for i := 0; i < b.N; i++ {
			if store.lookup(i * 7919) {
				hits++
			}
			gcSink = make([]byte, churnGarbage)
		}
	}
	b.StopTimer()
	cpu := gcCPUSeconds() - cpu0
	var after debug.GCStats
	after.Pause = make([]time.Duration, 0, 4096)
	debug.ReadGCStats(&after)
	n := int(after.NumGC - before.NumGC)
	var maxPause time.Duration
	for j := 0; j < n && j < len(after.Pause); j++ {
		maxPause = max(maxPause, after.Pause[j])
	}
	if !forced && hits != b.N {
		b.Fatalf("%d of %d lookups missed", b.N-hits, b.N)
	}
	b.ReportMetric(cpu*1e3, "gc-cpu-ms")
	if n > 0 {
		b.ReportMetric(cpu*1e3/float64(n), "gc-cpu-ms/cycle")
	}
	b.ReportMetric(float64(maxPause.Microseconds()), "max-pause-us")
	b.ReportMetric(float64(n), "gcs")
	b.ReportMetric(live, "live-heap-MB")
}

func BenchmarkGC5M(b *testing.B) {
	fill := func(set func(k, v []byte)) {
		for i := 0; i < gcEntries; i++ {
			set(benchKey(i), benchValue(i))
		}
	}
	m := make(gcMap, gcEntries)
	fill(func(k, v []byte) { m[string(k)] = v })
	b.Run("map[string][]byte/churn", func(b *testing.B) { measureGC(b, m, false) })
	b.Run("map[string][]byte/forced", func(b *testing.B) { measureGC(b, m, true) })
	m = nil
	runtime.GC()
	debug.FreeOSMemory()

	c, err := New(Config{InitialCapacity: gcEntries})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	keys := make([][]byte, 0, 4096)
	vals := make([][]byte, 0, 4096)
	fill(func(k, v []byte) {
		keys, vals = append(keys, k), append(vals, v)
		if len(keys) == cap(keys) {
			if err := c.SetMany(keys, vals); err != nil {
				b.Fatal(err)
			}
			keys, vals = keys[:0], vals[:0]
		}
	})
	if err := c.SetMany(keys, vals); err != nil {
		b.Fatal(err)
	}
	keys, vals = nil, nil
	if n := c.Len(); n != gcEntries {
		b.Fatalf("cache holds %d entries", n)
	}
	g := &gcCache{c: c, buf: make([]byte, 0, 64)}
	b.Run("mapcache/churn", func(b *testing.B) { measureGC(b, g, false) })
	b.Run("mapcache/forced", func(b *testing.B) { measureGC(b, g, true) })
}
