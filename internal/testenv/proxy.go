package testenv

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP relay in front of a server that can play a pulled network
// cable: Freeze stops all traffic on open connections (they stay open, as
// TCP does when a cable is pulled) and refuses new ones; Thaw restores it.
type Proxy struct {
	t        TB
	Port     int
	upstream string

	mu     sync.Mutex
	ln     net.Listener
	frozen bool
	thawed *sync.Cond
	conns  []net.Conn
	wg     sync.WaitGroup
	closed bool
}

// StartProxy relays 127.0.0.1:<Port> to 127.0.0.1:upstreamPort.
func StartProxy(t TB, upstreamPort int) *Proxy {
	t.Helper()
	p := &Proxy{t: t, upstream: fmt.Sprintf("127.0.0.1:%d", upstreamPort)}
	p.thawed = sync.NewCond(&p.mu)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy: %v", err)
	}
	p.Port = ln.Addr().(*net.TCPAddr).Port
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// A small receive buffer: when frozen, the sender's writes
			// block within moments instead of filling megabytes of
			// loopback buffers first.
			c.(*net.TCPConn).SetReadBuffer(16 * 1024)
			up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen && !p.closed {
				p.thawed.Wait()
			}
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// Freeze stops every byte and refuses new connections.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Thaw lets traffic flow again and accepts new connections on the same port.
func (p *Proxy) Thaw() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("testenv: proxy relisten: %v", err)
	}
	p.mu.Lock()
	p.frozen = false
	p.thawed.Broadcast()
	p.mu.Unlock()
	p.serve(ln)
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.thawed.Broadcast()
	ln := p.ln
	conns := p.conns
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
