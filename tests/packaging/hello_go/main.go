// A Go program built outside the repository against an installed libmapcache,
// with the binding's mapcache_pkgconfig build tag (tests/packaging/test_install.sh).
package main

import (
	"fmt"
	"log"

	mapcache "github.com/mapcache/mapcache-go"
)

func main() {
	c, err := mapcache.New(mapcache.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Set([]byte("user:42"), []byte("Ada")); err != nil {
		log.Fatal(err)
	}
	v, ok := c.Get([]byte("user:42"))
	if !ok {
		log.Fatal("user:42 not found")
	}
	fmt.Printf("Go, libmapcache %s: user:42 = %s\n", mapcache.Version(), v)
}
