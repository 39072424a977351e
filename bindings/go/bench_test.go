package mapcache

// Throughput benchmarks at 1M entries (16-byte keys, 32-byte values) against
// map+sync.RWMutex and sync.Map. Run with `make bench-go`, or:
//
//	go test -run '^$' -bench 'Get|Set|Mix' -cpu 1,2 -benchmem
//
// ns/op is per key in every benchmark, batched or not, so the numbers compare
// directly. b.RunParallel runs GOMAXPROCS goroutines (-cpu 1,2).

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	benchEntries = 1_000_000
	benchKeyLen  = 16
	benchValLen  = 32
	benchBatch   = 64
)

// benchKey is the 16-byte key of entry i.
func benchKey(i int) []byte {
	k := make([]byte, benchKeyLen)
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	binary.LittleEndian.PutUint64(k, x)
	binary.LittleEndian.PutUint64(k[8:], x^0xD1B54A32D192ED03)
	return k
}

func benchValue(i int) []byte {
	v := make([]byte, benchValLen)
	for j := range v {
		v[j] = byte(i + j)
	}
	return v
}

type benchSet struct {
	keys  [][]byte
	skeys []string
	akeys []any
	val   []byte
}

var (
	benchOnce sync.Once
	bset      benchSet
)

func benchData() *benchSet {
	benchOnce.Do(func() {
		bset.keys = make([][]byte, benchEntries)
		bset.skeys = make([]string, benchEntries)
		bset.akeys = make([]any, benchEntries)
		for i := range bset.keys {
			bset.keys[i] = benchKey(i)
			bset.skeys[i] = string(bset.keys[i])
			bset.akeys[i] = bset.skeys[i]
		}
		bset.val = benchValue(7)
	})
	return &bset
}

// The three contenders, each filled once with the 1M entries.
var (
	cacheOnce, rwOnce, smOnce sync.Once
	benchCache                *Cache
	benchRW                   *rwMap
	benchSM                   *sync.Map
)

type rwMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func getBenchCache(b *testing.B) *Cache {
	d := benchData()
	cacheOnce.Do(func() {
		c, err := New(Config{InitialCapacity: benchEntries})
		if err != nil {
			b.Fatal(err)
		}
		vals := make([][]byte, 1024)
		for i := 0; i < benchEntries; i += len(vals) {
			n := min(len(vals), benchEntries-i)
			for j := 0; j < n; j++ {
				vals[j] = benchValue(i + j)
			}
			if err := c.SetMany(d.keys[i:i+n], vals[:n]); err != nil {
				b.Fatal(err)
			}
		}
		benchCache = c
	})
	return benchCache
}

func getBenchRW() *rwMap {
	d := benchData()
	rwOnce.Do(func() {
		benchRW = &rwMap{m: make(map[string][]byte, benchEntries)}
		for i, k := range d.skeys {
			benchRW.m[k] = benchValue(i)
		}
	})
	return benchRW
}

func getBenchSM() *sync.Map {
	d := benchData()
	smOnce.Do(func() {
		benchSM = new(sync.Map)
		for i, k := range d.akeys {
			benchSM.Store(k, benchValue(i))
		}
	})
	return benchSM
}

// rng is a per-goroutine xorshift64* generator (cheap, no shared state).
type rng uint64

var rngSeed atomic.Uint64

func newRNG() rng { return rng(rngSeed.Add(0x9E3779B97F4A7C15) | 1) }

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	return x * 2685821657736338717
}

func (r *rng) index() int { return int(r.next() % benchEntries) }

var sink atomic.Int64

// op is what one benchmark does: single calls, or batches of benchBatch keys.
type contender struct {
	name  string
	setup func(b *testing.B)
	// single-key ops
	get func(i int) bool
	set func(i int)
	// batch ops on indices
	getBatch func(idx []int, scratch *batchScratch) int
	setBatch func(idx []int, scratch *batchScratch)
}

type batchScratch struct {
	keys [][]byte
	vals [][]byte
}

func contenders() []contender {
	d := benchData()
	return []contender{
		{
			name:  "mapcache",
			setup: func(b *testing.B) { getBenchCache(b) },
			get: func(i int) bool {
				_, ok := benchCache.Get(d.keys[i])
				return ok
			},
			set: func(i int) { benchCache.Set(d.keys[i], d.val) },
			getBatch: func(idx []int, s *batchScratch) int {
				s.keys = s.keys[:0]
				for _, i := range idx {
					s.keys = append(s.keys, d.keys[i])
				}
				vals, _ := benchCache.GetMany(s.keys)
				return len(vals)
			},
			setBatch: func(idx []int, s *batchScratch) {
				s.keys, s.vals = s.keys[:0], s.vals[:0]
				for _, i := range idx {
					s.keys = append(s.keys, d.keys[i])
					s.vals = append(s.vals, d.val)
				}
				benchCache.SetMany(s.keys, s.vals)
			},
		},
		{
			name:  "rwmutex-map",
			setup: func(b *testing.B) { getBenchRW() },
			get: func(i int) bool {
				benchRW.mu.RLock()
				_, ok := benchRW.m[d.skeys[i]]
				benchRW.mu.RUnlock()
				return ok
			},
			set: func(i int) {
				benchRW.mu.Lock()
				benchRW.m[d.skeys[i]] = d.val
				benchRW.mu.Unlock()
			},
			getBatch: func(idx []int, _ *batchScratch) int {
				n := 0
				benchRW.mu.RLock()
				for _, i := range idx {
					if _, ok := benchRW.m[d.skeys[i]]; ok {
						n++
					}
				}
				benchRW.mu.RUnlock()
				return n
			},
			setBatch: func(idx []int, _ *batchScratch) {
				benchRW.mu.Lock()
				for _, i := range idx {
					benchRW.m[d.skeys[i]] = d.val
				}
				benchRW.mu.Unlock()
			},
		},
		{
			name:  "sync.Map",
			setup: func(b *testing.B) { getBenchSM() },
			get: func(i int) bool {
				_, ok := benchSM.Load(d.akeys[i])
				return ok
			},
			set: func(i int) { benchSM.Store(d.akeys[i], d.val) },
			getBatch: func(idx []int, _ *batchScratch) int {
				n := 0
				for _, i := range idx {
					if _, ok := benchSM.Load(d.akeys[i]); ok {
						n++
					}
				}
				return n
			},
			setBatch: func(idx []int, _ *batchScratch) {
				for _, i := range idx {
					benchSM.Store(d.akeys[i], d.val)
				}
			},
		},
	}
}

// runBench runs one workload: writePct percent of keys are sets, the rest
// gets, uniformly random over the 1M keys; batch=1 means single calls.
func runBench(b *testing.B, c contender, writePct uint64, batch int) {
	c.setup(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRNG()
		if batch == 1 {
			hits := 0
			for pb.Next() {
				x := r.next()
				i := int(x % benchEntries)
				if (x>>32)%100 < writePct {
					c.set(i)
				} else if c.get(i) {
					hits++
				}
			}
			sink.Add(int64(hits))
			return
		}
		s := &batchScratch{}
		gets := make([]int, 0, batch)
		sets := make([]int, 0, batch)
		flush := func() {
			if len(gets) > 0 {
				sink.Add(int64(c.getBatch(gets, s)))
			}
			if len(sets) > 0 {
				c.setBatch(sets, s)
			}
			gets, sets = gets[:0], sets[:0]
		}
		for pb.Next() {
			x := r.next()
			i := int(x % benchEntries)
			if (x>>32)%100 < writePct {
				sets = append(sets, i)
			} else {
				gets = append(gets, i)
			}
			if len(gets)+len(sets) == batch {
				flush()
			}
		}
		flush()
	})
}

func benchAll(b *testing.B, writePct uint64) {
	for _, c := range contenders() {
		for _, batch := range []int{1, benchBatch} {
			name := c.name + "/single"
			if batch > 1 {
				name = fmt.Sprintf("%s/batch%d", c.name, batch)
			}
			b.Run(name, func(b *testing.B) { runBench(b, c, writePct, batch) })
		}
	}
}

// BenchmarkGet: 100% get hits.
func BenchmarkGet(b *testing.B) { benchAll(b, 0) }

// BenchmarkSet: 100% overwrites of existing keys with 32-byte values.
func BenchmarkSet(b *testing.B) { benchAll(b, 100) }

// BenchmarkMix90: 90% gets, 10% sets.
func BenchmarkMix90(b *testing.B) { benchAll(b, 10) }

// BenchmarkGetAppend: mapcache Get into a reused buffer (no allocation): the
// cost of the call itself.
func BenchmarkGetAppend(b *testing.B) {
	c := getBenchCache(b)
	d := benchData()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRNG()
		buf := make([]byte, 0, 64)
		for pb.Next() {
			v, ok, _ := c.AppendGet(buf[:0], d.keys[r.index()])
			if !ok || len(v) != benchValLen {
				b.Error("miss")
				return
			}
		}
	})
}
