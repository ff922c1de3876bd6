package vdns

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// serve starts a server for src on a free loopback port, stopped (and
// waited for) at the end of the test.
func serve(t *testing.T, src Source) *Server {
	t.Helper()
	return serveWith(t, Options{Source: src})
}

func serveWith(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Listen(opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return s
}

// Resolver returns a Go resolver that sends every query to addr over
// network ("udp" or "tcp"), as a pod's stub resolver would to its
// nameserver.
func resolver(addr, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func TestServerAnswersOverUDPAndTCP(t *testing.T) {
	s := serve(t, testSource())
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := resolver(s.Addr(), network)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ips, err := r.LookupHost(ctx, "web.default.svc.cluster.local.")
			if err != nil || !slices.Equal(sorted(ips), []string{"10.96.0.10", "fd00::a"}) {
				t.Fatalf("LookupHost web = %v, %v; want the cluster IPs", ips, err)
			}
			_, srvs, err := r.LookupSRV(ctx, "http", "tcp", "web.default.svc.cluster.local.")
			if err != nil || len(srvs) != 1 || srvs[0].Port != 80 || srvs[0].Target != "web.default.svc.cluster.local." {
				t.Fatalf("LookupSRV http = %v, %v", srvs, err)
			}
			_, err = r.LookupHost(ctx, "nope.default.svc.cluster.local.")
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				t.Fatalf("LookupHost nope: %v, want not found", err)
			}
		})
	}
}

// Garbage and half-messages on either transport get FORMERR or nothing,
// and the server keeps answering.
func TestServerSurvivesMalformedPackets(t *testing.T) {
	s := serve(t, testSource())
	u, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, p := range [][]byte{{}, {1}, make([]byte, 11), append(make([]byte, 12), 0xff), make([]byte, 65000)} {
		if _, err := u.Write(p); err != nil {
			t.Fatalf("write %d bytes: %v", len(p), err)
		}
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// A length prefix promising more than is sent, then a close.
	if _, err := c.Write([]byte{0xff, 0xff, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, network := range []string{"udp", "tcp"} {
		if ips, err := resolver(s.Addr(), network).LookupHost(ctx, "db.default.svc.cluster.local."); err != nil || len(ips) != 2 {
			t.Fatalf("%s lookup after malformed input = %v, %v", network, ips, err)
		}
	}
	// A response to a real query still carries its ID.
	if _, err := u.Write(query(t, "web.default.svc.cluster.local.", dnsmessage.TypeA)); err != nil {
		t.Fatal(err)
	}
	if err := u.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	for {
		n, err := u.Read(buf)
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		var p dnsmessage.Parser
		if h, err := p.Start(buf[:n]); err == nil && h.ID == 4242 {
			if h.RCode != dnsmessage.RCodeSuccess {
				t.Fatalf("rcode %v", h.RCode)
			}
			return
		} // else: the FORMERR of an earlier packet
	}
}

func TestServeStopsWithItsContextAndClosesIdleConnections(t *testing.T) {
	s, err := Listen(Options{Source: testSource()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // let Accept take it
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5s after its context ended with an idle TCP client")
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("TCP listener still accepting after Serve returned")
	}
}

// With an upstream, names outside the zone are relayed to it over the
// transport they came on, as CoreDNS's forward plugin does in vcluster's
// Corefile; without an answer from it, SERVFAIL.
func TestServerForwardsNamesOutsideTheZoneToItsUpstream(t *testing.T) {
	// The upstream: another server, authoritative for another domain.
	upstream := serveWith(t, Options{Domain: "example.test", Source: &staticSource{services: testSource().services}})
	s := serveWith(t, Options{Source: testSource(), Upstream: upstream.Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, network := range []string{"udp", "tcp"} {
		r := resolver(s.Addr(), network)
		if ips, err := r.LookupHost(ctx, "web.default.svc.example.test."); err != nil || !slices.Equal(sorted(ips), []string{"10.96.0.10", "fd00::a"}) {
			t.Errorf("%s: forwarded lookup = %v, %v; want the upstream's answer", network, ips, err)
		}
		if ips, err := r.LookupHost(ctx, "web.default.svc.cluster.local."); err != nil || len(ips) != 2 {
			t.Errorf("%s: own zone = %v, %v", network, ips, err)
		}
		_, err := r.LookupHost(ctx, "nope.default.svc.example.test.")
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("%s: upstream NXDOMAIN relayed as %v", network, err)
		}
	}

	// An upstream that does not answer: SERVFAIL, within the timeout.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s = serveWith(t, Options{Source: testSource(), Upstream: dead.LocalAddr().String()})
	u, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(query(t, "example.com.", dnsmessage.TypeA)); err != nil {
		t.Fatal(err)
	}
	if err := u.SetReadDeadline(time.Now().Add(forwardTimeout + 3*time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if err != nil {
		t.Fatalf("no answer with a silent upstream: %v", err)
	}
	if got := parse(t, buf[:n]); got.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("rcode %v with a silent upstream, want SERVFAIL", got.RCode)
	}
}

func TestListenRefusesABadUpstream(t *testing.T) {
	for _, up := range []string{"dns.example:53", "10.0.0.1", "10.0.0.1:0", "10.0.0.1:x"} {
		if _, err := Listen(Options{Source: testSource(), Upstream: up}); err == nil {
			t.Errorf("Upstream %q accepted", up)
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
