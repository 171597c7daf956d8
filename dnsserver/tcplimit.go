package dnsserver

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// TCP connections cost a goroutine and a descriptor each, and a client
// can open them and say nothing. Two bounds keep 1,000 such connections
// from stopping service: a connection that sends no query within
// tcpReadTimeout, or none for tcpIdleTimeout after an answer, is closed
// (miekg/dns's timeouts); and at most maxTCPConns stay open, a new one
// closing the oldest, so new clients are served at once while the idle
// ones wait for their timeouts.
const (
	tcpReadTimeout = 2 * time.Second
	tcpIdleTimeout = 3 * time.Second
	maxTCPConns    = 256
)

// cappedListener closes its oldest open connection when a new one would
// exceed max.
type cappedListener struct {
	net.Listener
	max   int
	mu    sync.Mutex
	conns *list.List // of *cappedConn, oldest first
}

func capConns(l net.Listener, max int) *cappedListener {
	return &cappedListener{Listener: l, max: max, conns: list.New()}
}

func (l *cappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &cappedConn{Conn: c, l: l}
	var evict *cappedConn
	l.mu.Lock()
	if l.conns.Len() >= l.max {
		evict = l.conns.Remove(l.conns.Front()).(*cappedConn)
		evict.elem = nil
	}
	cc.elem = l.conns.PushBack(cc)
	l.mu.Unlock()
	if evict != nil {
		evict.Conn.Close()
	}
	return cc, nil
}

// open returns the number of connections open now.
func (l *cappedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns.Len()
}

type cappedConn struct {
	net.Conn
	l    *cappedListener
	elem *list.Element // nil once removed; guarded by l.mu
}

func (c *cappedConn) Close() error {
	c.l.mu.Lock()
	if c.elem != nil {
		c.l.conns.Remove(c.elem)
		c.elem = nil
	}
	c.l.mu.Unlock()
	return c.Conn.Close()
}
