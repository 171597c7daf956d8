package gencache_test

import (
	"testing"

	"github.com/dcvaas/dcvaas/gencache"
)

func TestServesOnlyTheCurrentGeneration(t *testing.T) {
	c := gencache.New[string, int](10)
	if _, ok := c.Get(0, "a"); ok {
		t.Fatal("empty cache had a value")
	}
	c.Put(1, "a", 1)
	if v, ok := c.Get(1, "a"); !ok || v != 1 {
		t.Fatalf("Get(1) = %d, %v", v, ok)
	}
	// A change happened: generation 2. The old answer is not served.
	if _, ok := c.Get(2, "a"); ok {
		t.Fatal("served an answer of generation 1 at generation 2")
	}
	// An answer read at 1 but filed late is not served at 2 either.
	c.Put(2, "b", 2)
	c.Put(1, "a", 1)
	if _, ok := c.Get(2, "a"); ok {
		t.Fatal("a late answer of generation 1 was filed at 2")
	}
	if v, ok := c.Get(2, "b"); !ok || v != 2 {
		t.Fatalf("Get(2, b) = %d, %v", v, ok)
	}
}

func TestBounded(t *testing.T) {
	c := gencache.New[int, int](3)
	for i := range 10 {
		c.Put(1, i, i)
	}
	n := 0
	for i := range 10 {
		if _, ok := c.Get(1, i); ok {
			n++
		}
	}
	if n == 0 || n > 3 {
		t.Fatalf("%d entries held, want 1..3", n)
	}
	if v, ok := c.Get(1, 9); !ok || v != 9 {
		t.Fatal("the newest entry was not kept")
	}
}
