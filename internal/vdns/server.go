package vdns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of Options.
const (
	DefaultAddr        = "127.0.0.1:0"
	DefaultDomain      = "cluster.local"
	DefaultTTL         = 5 // seconds; CoreDNS's kubernetes plugin default
	DefaultUDPWorkers  = 8
	DefaultMaxTCPConns = 64
)

// forwardTimeout bounds one exchange with the upstream.
const forwardTimeout = 2 * time.Second

// tcpIdle bounds how long a TCP connection may sit between queries
// (RFC 7766 §6.2.3 suggests seconds, not minutes).
const tcpIdle = 10 * time.Second

// Options configure Listen.
type Options struct {
	// Addr is the host:port both the UDP and the TCP listener bind. With
	// port 0 the system picks one port free for both. Default: DefaultAddr.
	Addr string
	// Domain is the cluster domain the server is authoritative for.
	// Default: DefaultDomain.
	Domain string
	// Source answers questions about Services and endpoints. Required.
	Source Source
	// TTL of every record, in seconds. Default: DefaultTTL.
	TTL uint32
	// UDPWorkers is the number of goroutines that read, answer and write
	// UDP queries; more queries wait in the socket buffer. Default:
	// DefaultUDPWorkers.
	UDPWorkers int
	// MaxTCPConns bounds the TCP connections served at once; more wait in
	// the listen backlog. Default: DefaultMaxTCPConns.
	MaxTCPConns int
	// Upstream is the "IP:port" of a resolver that queries for names
	// outside Domain are relayed to, over the transport they came on (the
	// host cluster's DNS, say, as CoreDNS forwards to /etc/resolv.conf in
	// vcluster). The server then resolves anything for whoever reaches Addr:
	// bind it where only the tenant's pods do. Default: unset, such queries
	// are answered REFUSED.
	Upstream string
	// Logger receives errors of the listeners. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	o.Domain = strings.ToLower(strings.TrimSuffix(o.Domain, "."))
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.UDPWorkers == 0 {
		o.UDPWorkers = DefaultUDPWorkers
	}
	if o.MaxTCPConns == 0 {
		o.MaxTCPConns = DefaultMaxTCPConns
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Source == nil {
		errs = append(errs, errors.New("Source is nil; pass a ClusterSource of the virtual cluster"))
	}
	if msgs := validation.IsDNS1123Subdomain(o.Domain); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("Domain %q: %s", o.Domain, strings.Join(msgs, "; ")))
	}
	if o.Upstream != "" {
		host, port, err := net.SplitHostPort(o.Upstream)
		if p, perr := strconv.Atoi(port); err != nil || net.ParseIP(host) == nil || perr != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("Upstream %q: want IP:port, e.g. 10.96.0.10:53", o.Upstream))
		}
	}
	if o.UDPWorkers < 0 || o.MaxTCPConns < 0 {
		errs = append(errs, fmt.Errorf("UDPWorkers %d / MaxTCPConns %d: want positive numbers or 0 for the defaults", o.UDPWorkers, o.MaxTCPConns))
	}
	return errors.Join(errs...)
}

// Server answers DNS queries for a virtual cluster over UDP and TCP on one
// address. Listen binds it; Serve answers until its context ends.
type Server struct {
	opts Options
	a    *answerer
	udp  net.PacketConn
	tcp  net.Listener
}

// Listen validates opts and binds the UDP and TCP listeners, so Addr is
// known before Serve runs (to hand it to the syncer as the pods' DNS).
func Listen(opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid DNS server options: %w", err)
	}
	a, err := newAnswerer(opts.Domain, opts.TTL, opts.Source)
	if err != nil {
		return nil, fmt.Errorf("DNS zone %s: %w", opts.Domain, err)
	}
	udp, tcp, err := listenBoth(opts.Addr)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, a: a, udp: udp, tcp: tcp}, nil
}

// listenBoth binds UDP and TCP on the same address; with port 0 it retries
// a few times when the port UDP got is taken for TCP.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 5 {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		lastErr = fmt.Errorf("listen tcp %s: %w", udp.LocalAddr(), err)
		udp.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr returns the address both listeners are bound to (host:port).
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Serve answers queries until ctx ends, then closes the listeners and every
// connection and returns once no goroutine it started is left.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	conns := &connSet{m: map[net.Conn]struct{}{}}
	for range s.opts.UDPWorkers {
		wg.Go(func() { s.serveUDP(ctx) })
	}
	wg.Go(func() { s.serveTCP(ctx, conns, &wg) })
	<-ctx.Done()
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	conns.closeAll()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("close DNS listeners: %w", err)
	}
	return nil
}

func (s *Server) serveUDP(ctx context.Context) {
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Logger.Error("read DNS query", "err", err)
			continue
		}
		if resp := s.respond(ctx, buf[:n], "udp"); resp != nil {
			if _, err := s.udp.WriteTo(resp, from); err != nil && ctx.Err() == nil {
				s.opts.Logger.Debug("write DNS answer", "to", from, "err", err)
			}
		}
	}
}

func (s *Server) serveTCP(ctx context.Context, conns *connSet, wg *sync.WaitGroup) {
	sem := make(chan struct{}, s.opts.MaxTCPConns)
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		c, err := s.tcp.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Logger.Error("accept DNS connection", "err", err)
			continue
		}
		if !conns.add(c) { // Serve is closing
			c.Close()
			<-sem
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer conns.remove(c)
			s.serveConn(ctx, c)
		})
	}
}

// serveConn answers length-prefixed queries on c (RFC 1035 §4.2.2) until
// the client closes it, stays idle for tcpIdle, or sends a message that
// deserves no answer.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	var size [2]byte
	buf := make([]byte, 65535)
	for {
		if err := c.SetDeadline(time.Now().Add(tcpIdle)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		resp := s.respond(ctx, buf[:n], "tcp")
		if resp == nil || len(resp) > 65535 {
			return
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// respond answers query, which came over network ("udp" or "tcp"): from
// the source, or for a name outside the zone from the upstream if there is
// one (SERVFAIL when it does not answer in time).
func (s *Server) respond(ctx context.Context, query []byte, network string) []byte {
	resp, outside := s.a.answer(query, network == "udp")
	if !outside || s.opts.Upstream == "" || len(resp) < 4 {
		return resp
	}
	fwd, err := s.forward(ctx, query, network)
	if err != nil {
		s.opts.Logger.Debug("forward DNS query", "upstream", s.opts.Upstream, "err", err)
		resp[3] = resp[3]&0xf0 | byte(dnsmessage.RCodeServerFailure) // the REFUSED answer, as SERVFAIL
		return resp
	}
	return fwd
}

// forward relays query to the upstream over network and returns its
// response to the same ID.
func (s *Server) forward(ctx context.Context, query []byte, network string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, s.opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("dial upstream: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // Serve stopping, or the timeout
	defer stop()
	id := binary.BigEndian.Uint16(query)
	isResponse := func(b []byte) bool { return len(b) >= 12 && binary.BigEndian.Uint16(b) == id && b[2]&0x80 != 0 }
	buf := make([]byte, 65535)
	if network == "udp" {
		if _, err := c.Write(query); err != nil {
			return nil, fmt.Errorf("send to upstream: %w", err)
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("read upstream answer: %w", err)
			}
			if isResponse(buf[:n]) {
				return buf[:n], nil
			} // a stray datagram: keep waiting for ours
		}
	}
	msg := make([]byte, 2+len(query))
	binary.BigEndian.PutUint16(msg, uint16(len(query)))
	copy(msg[2:], query)
	if _, err := c.Write(msg); err != nil {
		return nil, fmt.Errorf("send to upstream: %w", err)
	}
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return nil, fmt.Errorf("read upstream answer: %w", err)
	}
	n := int(binary.BigEndian.Uint16(buf))
	if _, err := io.ReadFull(c, buf[:n]); err != nil {
		return nil, fmt.Errorf("read upstream answer: %w", err)
	}
	if !isResponse(buf[:n]) {
		return nil, errors.New("upstream answered another query")
	}
	return buf[:n], nil
}

// connSet tracks open TCP connections so Serve can close them on stop.
type connSet struct {
	mu     sync.Mutex
	m      map[net.Conn]struct{}
	closed bool
}

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
	c.Close()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.m {
		c.Close()
	}
}
