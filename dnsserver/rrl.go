package dnsserver

import (
	"net"
	"sync"
	"time"
)

// Response rate limiting, after NSD's: a forged source address can make
// an authoritative server flood its victim with answers (reflection). So
// each client network (/24 for IPv4, /56 for IPv6: one customer's range,
// however many addresses it rotates through) gets at most rate UDP
// responses a second. Past that, every rrlSlip-th answer is sent back
// empty with TC set, so that a real resolver sharing the range retries
// over TCP (which a forger cannot complete) and still gets its answer;
// the others are dropped. TCP is never limited.
//
// The table is a fixed array of counters indexed by a hash of the
// network, as NSD's is: a flood from random forged networks costs no
// memory; two networks sharing a slot only reset each other's count.

const (
	rrlSlip    = 2
	rrlBuckets = 1 << 16
	rrlLocks   = 256
)

type rrlAction int

const (
	rrlAllow rrlAction = iota
	rrlDrop
	rrlTruncate
)

type rrlBucket struct {
	key     uint64
	second  int64
	n       int
	limited int
}

type rrl struct {
	rate    int
	locks   [rrlLocks]sync.Mutex
	buckets []rrlBucket
}

func newRRL(rate int) *rrl {
	if rate <= 0 {
		return nil
	}
	return &rrl{rate: rate, buckets: make([]rrlBucket, rrlBuckets)}
}

// decide counts one response to ip at now and says what to do with it.
func (r *rrl) decide(ip net.IP, now time.Time) rrlAction {
	key := networkKey(ip)
	i := (key * 0x9E3779B97F4A7C15) >> (64 - 16) // Fibonacci hashing onto rrlBuckets
	mu := &r.locks[i%rrlLocks]
	mu.Lock()
	defer mu.Unlock()
	b := &r.buckets[i]
	sec := now.Unix()
	if b.key != key || b.second != sec {
		if b.key != key {
			b.limited = 0
		}
		b.key, b.second, b.n = key, sec, 0
	}
	b.n++
	if b.n <= r.rate {
		return rrlAllow
	}
	b.limited++
	if b.limited%rrlSlip == 0 {
		return rrlTruncate
	}
	return rrlDrop
}

// networkKey packs the client's /24 (IPv4) or /56 (IPv6) into one number;
// the top byte tells the families apart.
func networkKey(ip net.IP) uint64 {
	if v4 := ip.To4(); v4 != nil {
		return 4<<56 | uint64(v4[0])<<16 | uint64(v4[1])<<8 | uint64(v4[2])
	}
	var k uint64
	if len(ip) == net.IPv6len {
		for _, b := range ip[:7] {
			k = k<<8 | uint64(b)
		}
	}
	return 6<<56 | k
}
