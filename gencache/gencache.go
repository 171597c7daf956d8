// Package gencache keeps answers that stay right until the data they were
// read from changes. The data's owner counts its changes (a generation);
// an answer is filed under the generation read before it was computed and
// served only while that is still the current one. Nothing expires by
// time, and nothing is invalidated by key: the first answer filed under a
// newer generation drops all the older ones at once.
package gencache

import "sync"

// Cache maps keys to values read at one generation. The zero value is not
// usable; call New.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	at  uint64
	m   map[K]V
	max int
}

// New returns a cache holding at most max entries per generation.
func New[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{m: map[K]V{}, max: max}
}

// Get returns the value filed under key at generation gen, the current one.
func (c *Cache[K, V]) Get(gen uint64, key K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.at != gen {
		var zero V
		return zero, false
	}
	v, ok := c.m[key]
	return v, ok
}

// Put files v, computed from data read at generation gen (read before the
// computation began). A value older than what the cache holds is dropped.
func (c *Cache[K, V]) Put(gen uint64, key K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.at:
		return
	case gen > c.at || len(c.m) >= c.max:
		c.at, c.m = gen, map[K]V{}
	}
	c.m[key] = v
}
