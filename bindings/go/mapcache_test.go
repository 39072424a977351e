package mapcache

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustGet(t *testing.T, c *Cache, key string, want string) {
	t.Helper()
	v, ok := c.Get([]byte(key))
	if !ok || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, true", key, v, ok, want)
	}
}

func TestVersion(t *testing.T) {
	if Version() == "" {
		t.Fatal("empty Version()")
	}
	if s := StatusText(stConcurrentWrite); !strings.Contains(strings.ToUpper(s), "CONCURRENT") {
		t.Fatalf("StatusText(6) = %q", s)
	}
}

func TestSetGetDelete(t *testing.T) {
	c := newCache(t, Config{})
	if v, ok := c.Get([]byte("missing")); ok || v != nil {
		t.Fatalf("Get(missing) = %q, %v", v, ok)
	}
	if err := c.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "a", "1")
	prev, loaded, err := c.Swap([]byte("a"), []byte("2"))
	if err != nil || !loaded || string(prev) != "1" {
		t.Fatalf("Swap existing = %q, %v, %v", prev, loaded, err)
	}
	prev, loaded, err = c.Swap([]byte("b"), []byte("3"))
	if err != nil || loaded || prev != nil {
		t.Fatalf("Swap new = %q, %v, %v", prev, loaded, err)
	}
	mustGet(t, c, "a", "2")
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if ok, err := c.Contains([]byte("b")); err != nil || !ok {
		t.Fatalf("Contains(b) = %v, %v", ok, err)
	}
	if ok, err := c.Contains([]byte("zz")); err != nil || ok {
		t.Fatalf("Contains(zz) = %v, %v", ok, err)
	}
	del, err := c.Delete([]byte("a"))
	if err != nil || !del {
		t.Fatalf("Delete(a) = %v, %v", del, err)
	}
	del, err = c.Delete([]byte("a"))
	if err != nil || del {
		t.Fatalf("second Delete(a) = %v, %v", del, err)
	}
	if _, ok := c.Get([]byte("a")); ok {
		t.Fatal("a still present after Delete")
	}
	if n, err := c.LenErr(); err != nil || n != 1 {
		t.Fatalf("LenErr = %d, %v", n, err)
	}
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
}

func TestEmptyKeyAndValue(t *testing.T) {
	c := newCache(t, Config{})
	if err := c.Set(nil, []byte("empty key")); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "", "empty key")
	// nil and []byte{} (and "") are one key: the empty string.
	if _, loaded, err := c.Swap([]byte{}, []byte("same key")); err != nil || !loaded {
		t.Fatalf("Swap([]byte{}) after Set(nil) = %v, %v; want the key present", loaded, err)
	}
	if v, ok := c.Get(nil); !ok || string(v) != "same key" {
		t.Fatalf("Get(nil) = %q, %v", v, ok)
	}
	if v, ok := c.GetString(""); !ok || v != "same key" {
		t.Fatalf(`GetString("") = %q, %v`, v, ok)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d after writes of nil and []byte{}, want 1", n)
	}
	if del, err := c.Delete([]byte{}); err != nil || !del {
		t.Fatalf("Delete([]byte{}) = %v, %v", del, err)
	}
	if ok, err := c.Contains(nil); err != nil || ok {
		t.Fatalf("Contains(nil) after Delete([]byte{}) = %v, %v", ok, err)
	}
	if err := c.Set([]byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	v, ok := c.Get([]byte("k"))
	if !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value: Get = %#v, %v; want non-nil empty, true", v, ok)
	}
	vals, err := c.GetMany([][]byte{[]byte("k"), []byte("absent")})
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] == nil || len(vals[0]) != 0 || vals[1] != nil {
		t.Fatalf("GetMany empty/absent = %#v", vals)
	}
}

func TestStringsAndLookup(t *testing.T) {
	c := newCache(t, Config{})
	if err := c.SetString("user:1", "alice"); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.GetString("user:1"); !ok || v != "alice" {
		t.Fatalf("GetString = %q, %v", v, ok)
	}
	if v, ok := c.GetString("user:2"); ok || v != "" {
		t.Fatalf("GetString(absent) = %q, %v", v, ok)
	}
	v, ok, err := c.Lookup([]byte("user:1"))
	if err != nil || !ok || string(v) != "alice" {
		t.Fatalf("Lookup = %q, %v, %v", v, ok, err)
	}
	v, ok, err = c.Lookup([]byte("nobody"))
	if err != nil || ok || v != nil {
		t.Fatalf("Lookup(absent) = %q, %v, %v", v, ok, err)
	}
}

// Values larger than the on-stack buffer take the exact-size path.
func TestLargeValues(t *testing.T) {
	c := newCache(t, Config{})
	for _, n := range []int{stackBuf - 1, stackBuf, stackBuf + 1, 4096, 1 << 20} {
		val := bytes.Repeat([]byte{byte(n)}, n)
		val[0], val[n-1] = 'x', 'y'
		key := []byte(fmt.Sprint("big", n))
		if err := c.Set(key, val); err != nil {
			t.Fatal(err)
		}
		got, ok := c.Get(key)
		if !ok || !bytes.Equal(got, val) {
			t.Fatalf("Get(%d-byte value) mismatch (ok=%v len=%d)", n, ok, len(got))
		}
		actual, loaded, err := c.GetOrSet(key, []byte("other"))
		if err != nil || !loaded || !bytes.Equal(actual, val) {
			t.Fatalf("GetOrSet(existing %d bytes) = len %d, %v, %v", n, len(actual), loaded, err)
		}
	}
}

func TestAppendGet(t *testing.T) {
	c := newCache(t, Config{})
	c.Set([]byte("k"), []byte("value"))
	dst := make([]byte, 0, 64)
	dst = append(dst, "prefix:"...)
	out, ok, err := c.AppendGet(dst, []byte("k"))
	if err != nil || !ok || string(out) != "prefix:value" {
		t.Fatalf("AppendGet = %q, %v, %v", out, ok, err)
	}
	if &out[0] != &dst[:1][0] {
		t.Fatal("AppendGet reallocated although dst had room")
	}
	// Too little room: grows.
	out, ok, err = c.AppendGet([]byte("p:"), []byte("k"))
	if err != nil || !ok || string(out) != "p:value" {
		t.Fatalf("AppendGet(grow) = %q, %v, %v", out, ok, err)
	}
	out, ok, err = c.AppendGet([]byte("p:"), []byte("absent"))
	if err != nil || ok || string(out) != "p:" {
		t.Fatalf("AppendGet(absent) = %q, %v, %v", out, ok, err)
	}
}

func TestGetOrSet(t *testing.T) {
	c := newCache(t, Config{})
	actual, loaded, err := c.GetOrSet([]byte("k"), []byte("first"))
	if err != nil || loaded || string(actual) != "first" {
		t.Fatalf("GetOrSet(absent) = %q, %v, %v", actual, loaded, err)
	}
	actual, loaded, err = c.GetOrSet([]byte("k"), []byte("second"))
	if err != nil || !loaded || string(actual) != "first" {
		t.Fatalf("GetOrSet(present) = %q, %v, %v", actual, loaded, err)
	}
	mustGet(t, c, "k", "first")
}

func TestCompareAndSwap(t *testing.T) {
	c := newCache(t, Config{})
	sw, err := c.CompareAndSwap([]byte("k"), []byte("a"), []byte("b"))
	if err != nil || sw {
		t.Fatalf("CAS(absent) = %v, %v", sw, err)
	}
	c.Set([]byte("k"), []byte("a"))
	sw, err = c.CompareAndSwap([]byte("k"), []byte("x"), []byte("b"))
	if err != nil || sw {
		t.Fatalf("CAS(mismatch) = %v, %v", sw, err)
	}
	mustGet(t, c, "k", "a")
	sw, err = c.CompareAndSwap([]byte("k"), []byte("a"), []byte("b"))
	if err != nil || !sw {
		t.Fatalf("CAS(match) = %v, %v", sw, err)
	}
	mustGet(t, c, "k", "b")
}

func keysN(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%06d", prefix, i))
	}
	return out
}

func TestBatches(t *testing.T) {
	c := newCache(t, Config{})
	keys := keysN("k", 1000)
	vals := make([][]byte, len(keys))
	for i := range vals {
		// Mixed sizes, some much larger than the batch size hint, to force
		// the second (exactly sized) call.
		n := i % 7 * 9
		if i%97 == 0 {
			n = 5000 + i
		}
		vals[i] = bytes.Repeat([]byte{byte('a' + i%26)}, n)
	}
	if err := c.SetMany(keys, vals); err != nil {
		t.Fatal(err)
	}
	if n := c.Len(); n != len(keys) {
		t.Fatalf("Len = %d after SetMany", n)
	}
	query := append(append([][]byte{}, keys...), []byte("absent-1"), []byte("absent-2"))
	got, err := c.GetMany(query)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(query) {
		t.Fatalf("GetMany returned %d values", len(got))
	}
	for i := range keys {
		if got[i] == nil || !bytes.Equal(got[i], vals[i]) {
			t.Fatalf("GetMany[%d] = %d bytes, want %d", i, len(got[i]), len(vals[i]))
		}
	}
	if got[len(keys)] != nil || got[len(keys)+1] != nil {
		t.Fatal("GetMany returned a value for an absent key")
	}
	// Appending to one result must not clobber the next.
	_ = append(got[1], 'Z')
	if !bytes.Equal(got[2], vals[2]) {
		t.Fatal("results share capacity")
	}
	n, err := c.DeleteMany(append(keys[:500:500], []byte("absent")))
	if err != nil || n != 500 {
		t.Fatalf("DeleteMany = %d, %v; want 500", n, err)
	}
	if n := c.Len(); n != 500 {
		t.Fatalf("Len = %d after DeleteMany", n)
	}
	if v, err := c.GetMany(nil); err != nil || len(v) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", v, err)
	}
	if err := c.SetMany(nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DeleteMany(nil); err != nil || n != 0 {
		t.Fatal(n, err)
	}
}

func TestRangeAndAll(t *testing.T) {
	c := newCache(t, Config{})
	want := map[string]string{}
	for i := 0; i < 3000; i++ {
		k, v := fmt.Sprintf("key%d", i), fmt.Sprintf("val%d", i*i)
		want[k] = v
		c.SetString(k, v)
	}
	// Entries larger than one iteration buffer.
	big := strings.Repeat("B", 3*iterBufSize)
	want["big"] = big
	c.SetString("big", big)

	seen := map[string]string{}
	err := c.Range(func(k, v []byte) bool {
		if _, dup := seen[string(k)]; dup {
			t.Errorf("key %q yielded twice", k)
		}
		seen[string(k)] = string(v)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("Range saw %d entries, want %d", len(seen), len(want))
	}
	for k, v := range want {
		if seen[k] != v {
			t.Fatalf("Range: %q = %.20q, want %.20q", k, seen[k], v)
		}
	}

	// iter.Seq2, with retained slices and early stop.
	var kept [][]byte
	count := 0
	for k, v := range c.All() {
		if want[string(k)] != string(v) {
			t.Fatalf("All: %q = %.20q", k, v)
		}
		kept = append(kept, k)
		count++
		if count == 100 {
			break
		}
	}
	if count != 100 {
		t.Fatalf("All yielded %d before break", count)
	}
	for _, k := range kept {
		if _, ok := want[string(k)]; !ok {
			t.Fatalf("retained key %q was overwritten", k)
		}
	}
	var keys []string
	for k := range c.Keys() {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	if len(keys) != len(want) {
		t.Fatalf("Keys yielded %d", len(keys))
	}
}

func TestRangeEmpty(t *testing.T) {
	c := newCache(t, Config{})
	if err := c.Range(func(k, v []byte) bool { t.Fatal("called on empty cache"); return true }); err != nil {
		t.Fatal(err)
	}
}

func TestWriteDuringRange(t *testing.T) {
	c := newCache(t, Config{})
	for i := 0; i < 500; i++ {
		c.SetString(fmt.Sprint("k", i), "v")
	}
	seen := map[string]int{}
	err := c.Range(func(k, v []byte) bool {
		seen[string(k)]++
		// Writes (and growth) during the iteration are allowed.
		if err := c.Set(append([]byte("new-"), k...), v); err != nil {
			t.Errorf("Set during Range: %v", err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%q yielded %d times", k, n)
		}
	}
	for i := 0; i < 500; i++ {
		if seen[fmt.Sprint("k", i)] != 1 {
			t.Fatalf("k%d (present for the whole iteration) not yielded", i)
		}
	}
}

func TestLabelView(t *testing.T) {
	c := newCache(t, Config{})
	w := c.WithLabel("writer-1")
	if w.Label() != "writer-1" || c.Label() != "" {
		t.Fatalf("labels: %q %q", w.Label(), c.Label())
	}
	if err := w.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "k", "v") // same map
	if got := c.WithLabel("a\x00b\xff").Label(); got != "a\uFFFDb\uFFFD" {
		t.Fatalf("sanitised label = %q", got)
	}
	if err := c.WithLabel("a\x00b\xff").Set([]byte("k2"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	lv := c.WithLabel(long)
	if n := len(lv.Label()); n > MaxLabelLen || n < MaxLabelLen-1 || !utf8.ValidString(lv.Label()) {
		t.Fatalf("long label cut to %d bytes (valid UTF-8: %v)", n, utf8.ValidString(lv.Label()))
	}
	if err := lv.Set([]byte("k3"), []byte("v")); err != nil {
		t.Fatalf("Set with a maximal label: %v", err)
	}
	w.Close() // closes the shared map
	if err := c.Set([]byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after a view's Close = %v", err)
	}
}

// A value over the on-stack buffer that is deleted (or replaced by an error)
// between Get's first call and its retry is a miss: nil, not the empty slice
// made for the retry, which would read as a stored empty value.
func TestMissBetweenGetsFirstCallAndItsRetryIsNil(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, long := []byte("k"), make([]byte, 4*stackBuf)
	defer func() { getRetryHook = nil }()
	getRetryHook = func() {
		if _, err := c.Delete(key); err != nil {
			t.Error(err)
		}
	}
	for _, call := range []struct {
		name string
		get  func() ([]byte, bool)
	}{
		{"Get", func() ([]byte, bool) { return c.Get(key) }},
		{"Lookup", func() ([]byte, bool) { v, ok, _ := c.Lookup(key); return v, ok }},
	} {
		if err := c.Set(key, long); err != nil {
			t.Fatal(err)
		}
		if v, ok := call.get(); ok || v != nil {
			t.Errorf("%s of a key deleted before the retry = %#v, %v; want nil, false", call.name, v, ok)
		}
	}
	// AppendGet's miss returns the caller's dst as it was.
	if err := c.Set(key, long); err != nil {
		t.Fatal(err)
	}
	dst := []byte("prefix")
	v, ok, err := c.AppendGet(dst, key)
	if err != nil || ok || string(v) != "prefix" {
		t.Errorf("AppendGet = %q, %v, %v", v, ok, err)
	}
}
