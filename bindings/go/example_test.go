package mapcache_test

import (
	"errors"
	"fmt"
	"slices"

	mapcache "github.com/mapcache/mapcache-go"
)

func Example() {
	c, err := mapcache.New(mapcache.Config{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	c.Set([]byte("user:1"), []byte("alice"))
	c.SetString("user:2", "bob")

	v, ok := c.Get([]byte("user:1"))
	fmt.Println(string(v), ok)
	s, ok := c.GetString("user:3")
	fmt.Printf("%q %v\n", s, ok)
	fmt.Println(c.Len())
	// Output:
	// alice true
	// "" false
	// 2
}

func ExampleCache_GetMany() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	c.SetMany(
		[][]byte{[]byte("a"), []byte("b")},
		[][]byte{[]byte("1"), []byte("2")},
	)
	vals, err := c.GetMany([][]byte{[]byte("a"), []byte("missing"), []byte("b")})
	fmt.Println(err)
	for _, v := range vals {
		if v == nil {
			fmt.Println("absent")
		} else {
			fmt.Println(string(v))
		}
	}
	// Output:
	// <nil>
	// 1
	// absent
	// 2
}

func ExampleCache_Swap() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	prev, loaded, _ := c.Swap([]byte("k"), []byte("1"))
	fmt.Printf("%q %v\n", prev, loaded)
	prev, loaded, _ = c.Swap([]byte("k"), []byte("2"))
	fmt.Printf("%q %v\n", prev, loaded)
	// Output:
	// "" false
	// "1" true
}

func ExampleCache_All() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	for _, k := range []string{"x", "y", "z"} {
		c.SetString(k, k+k)
	}
	var lines []string
	for k, v := range c.All() {
		lines = append(lines, string(k)+"="+string(v))
	}
	slices.Sort(lines)
	fmt.Println(lines)
	// Output: [x=xx y=yy z=zz]
}

func ExampleCache_Close() {
	c, _ := mapcache.New(mapcache.Config{})
	fmt.Println(c.Close())
	fmt.Println(c.Close()) // a second Close does nothing and returns nil
	err := c.Set([]byte("k"), []byte("v"))
	fmt.Println(errors.Is(err, mapcache.ErrClosed))
	// Output:
	// <nil>
	// <nil>
	// true
}

func ExampleCache_WithLabel() {
	c, _ := mapcache.New(mapcache.Config{Mode: mapcache.Exclusive})
	defer c.Close()
	w := c.WithLabel("writer-1")
	if err := w.Set([]byte("k"), []byte("v")); err != nil {
		// With two writers at once: errors.Is(err, mapcache.ErrConcurrentWrite),
		// and err.(*mapcache.Error) names the Holder and the Collider.
		var e *mapcache.Error
		if errors.As(err, &e) {
			fmt.Println(e.Holder, e.Collider)
		}
	}
	fmt.Println(w.Label())
	// Output: writer-1
}
