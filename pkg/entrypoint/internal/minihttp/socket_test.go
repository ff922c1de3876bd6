package minihttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// get answers one GET through a standard client, proving the listener serves real TCP.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// serveOn runs Serve on ln until the test ends; the channel is closed if Serve returns earlier.
func serveOn(t *testing.T, ln Listener) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	var err error
	go func() {
		defer close(returned)
		err = Serve(ctx, ln, okRoute)
	}()
	t.Cleanup(func() {
		cancel()
		<-returned
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return returned
}

// ":PORT" listens on every address, IPv4 and IPv6, as net.Listen("tcp", ":PORT") does.
func TestListenOnEveryAddressServesIPv4AndIPv6(t *testing.T) {
	ln, err := Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln)
	port := strconv.Itoa(int(ln.Addr().Port()))
	if got := get(t, "http://127.0.0.1:"+port+"/"); got != "ok\n" {
		t.Errorf("over IPv4: %q", got)
	}
	if b, err := os.ReadFile("/proc/net/if_inet6"); err != nil || !strings.Contains(string(b), "00000000000000000000000000000001") {
		t.Log("no IPv6 loopback on this machine; IPv6 not checked")
		return
	}
	if got := get(t, "http://[::1]:"+port+"/"); got != "ok\n" {
		t.Errorf("over IPv6: %q", got)
	}
}

func TestListenOnLocalhostStaysOnLoopback(t *testing.T) {
	ln, err := Listen("localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln)
	if want := netip.MustParseAddr("127.0.0.1"); ln.Addr().Addr() != want {
		t.Errorf("localhost listened on %v, want %v", ln.Addr(), want)
	}
	if got := get(t, "http://"+ln.Addr().String()+"/"); got != "ok\n" {
		t.Errorf("GET = %q", got)
	}
}

func TestListenRefusesBadAddressesByName(t *testing.T) {
	busy, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for addr, want := range map[string]string{
		"8080":                   "want HOST:PORT or :PORT",
		":99999":                 "want HOST:PORT or :PORT",
		"example.invalid:80":     `"example.invalid" is not an IP address`,
		busy.Addr().String():     "address already in use",
		"[::1:80":                "in brackets",
		"::1:80":                 "in brackets",
		"127.0.0.1:http-alt-bad": "want HOST:PORT or :PORT",
	} {
		ln, err := Listen(addr)
		if err == nil {
			_ = ln.Close()
			t.Errorf("Listen(%q) succeeded", addr)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), addr) {
			t.Errorf("Listen(%q) = %v; want the address and %q", addr, err, want)
		}
	}
}

// brokenPeer returns the server side of a TCP connection whose client reset it (SO_LINGER 0).
func brokenPeer(t *testing.T) Conn {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
	return srv
}

// A probe that hangs up before its answer is written must cost the server an EPIPE, never a
// SIGPIPE: PID 1 forwards the signals it receives, so a SIGPIPE here would reach the
// application. The control half shows that a plain write(2) on the same kind of socket does
// raise SIGPIPE, so the test can see one.
func TestWriteToAPeerThatHungUpRaisesNoSIGPIPE(t *testing.T) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	// The first write after the reset may fail with ECONNRESET; the next ones fail with EPIPE,
	// which is where the kernel raises SIGPIPE unless told not to.
	writeUntilEPIPE := func(write func([]byte) error) error {
		var err error
		for range 100 {
			if err = write([]byte("HTTP/1.1 200 OK\r\n\r\n")); errors.Is(err, syscall.EPIPE) {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return err
	}

	srv := brokenPeer(t)
	err := writeUntilEPIPE(func(b []byte) error { _, err := srv.Write(b); return err })
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write to a reset connection: %v, want EPIPE", err)
	}

	control := brokenPeer(t).(sockConn)
	rc, _ := control.SyscallConn()
	var werr error
	_ = rc.Control(func(fd uintptr) {
		werr = writeUntilEPIPE(func(b []byte) error { _, err := unix.Write(int(fd), b); return err })
	})
	if !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("control write(2): %v, want EPIPE", werr)
	}
	// Exactly one SIGPIPE: the control's. The first write's would have arrived before it.
	select {
	case <-sigs:
	case <-time.After(10 * time.Second):
		t.Fatal("the control write(2) raised no SIGPIPE; the test cannot see one")
	}
	select {
	case <-sigs:
		t.Error("a second SIGPIPE: the server's own write raised one")
	default:
	}
}

func TestParseURL(t *testing.T) {
	good := map[string]Target{
		"http://127.0.0.1:9090/-/reload":    {Host: "127.0.0.1", Port: 9090, HostPort: "127.0.0.1:9090", Path: "/-/reload"},
		"http://localhost":                  {Host: "localhost", Port: 80, HostPort: "localhost", Path: "/"},
		"http://[::1]:8080/x?y=1":           {Host: "::1", Port: 8080, HostPort: "[::1]:8080", Path: "/x?y=1"},
		"http://app?reload=1":               {Host: "app", Port: 80, HostPort: "app", Path: "/?reload=1"},
		"http://[fd00::2]/":                 {Host: "fd00::2", Port: 80, HostPort: "[fd00::2]", Path: "/"},
		"http://my-pod.local:1/a/b/../c%20": {Host: "my-pod.local", Port: 1, HostPort: "my-pod.local:1", Path: "/a/b/../c%20"},
	}
	for raw, want := range good {
		got, err := ParseURL(raw)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	bad := map[string]string{
		"https://127.0.0.1/":          "only http://",
		"http://h/x\r\nX-Injected: 1": "control characters",
		"http://h/a b":                "white space",
		"http://user:pw@h/":           "user information",
		"http://h/#frag":              "fragments",
		"http://h:0/":                 "bad port",
		"http://h:65536/":             "bad port",
		"http://:80/":                 "no host",
		"http://[::1/":                "missing ]",
		"http://[::1]x/":              "want [IPv6]:PORT",
	}
	for raw, want := range bad {
		if _, err := ParseURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q) = %v; want an error with %q", raw, err, want)
		}
	}
}

func TestResolveUsesLiteralsAndTheHostsFileOnly(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("# comment\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.1.2.3 my-pod.ns.svc my-pod # the pod\nbogus line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][]string{
		"10.9.8.7":  {"10.9.8.7"},
		"[fd00::1]": {"fd00::1"},
		"MY-POD":    {"10.1.2.3"},
		"localhost": {"127.0.0.1", "::1"},
	} {
		got, err := resolve(host, hosts)
		if err != nil {
			t.Errorf("resolve(%q): %v", host, err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if !slices.Equal(s, want) {
			t.Errorf("resolve(%q) = %v, want %v", host, s, want)
		}
	}
	if got, err := resolve("localhost", filepath.Join(t.TempDir(), "missing")); err != nil || len(got) != 1 || got[0].String() != "127.0.0.1" {
		t.Errorf("localhost without a hosts file = %v, %v; want 127.0.0.1", got, err)
	}
	if _, err := resolve("example.com", hosts); err == nil || !strings.Contains(err.Error(), "does not query DNS") {
		t.Errorf("a name outside the hosts file: %v, want an error saying DNS is not queried", err)
	}
}

func TestPostThroughLocalhostAndDialErrors(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Host)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	code, err := Post(context.Background(), "http://localhost:"+port+"/-/reload?x=1")
	if err != nil || code != 202 {
		t.Fatalf("Post = %d, %v; want 202", code, err)
	}
	if want := []string{"POST /-/reload?x=1 localhost:" + port}; !slices.Equal(got, want) {
		t.Errorf("server saw %v, want %v", got, want)
	}
	srv.Close()
	if _, err := Post(context.Background(), "http://127.0.0.1:"+port+"/"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Post to a closed port: %v, want ECONNREFUSED", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Post(ctx, "http://127.0.0.1:"+port+"/"); !errors.Is(err, context.Canceled) {
		t.Errorf("Post with a cancelled context: %v, want context.Canceled", err)
	}
}

// FuzzParseURL: whatever --on-change http:URL holds, a URL that parses yields a request line and
// Host header that cannot be split (no white space or control bytes), a path starting with "/",
// and nothing lost: the URL is exactly http:// + HostPort + Path (with "/" added before a bare
// query).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:9090/-/reload", "http://[::1]:8080/x?y=1", "http://app?reload=1",
		"http://h/x\r\nX-Injected: 1", "http://user@h/", "http://h:0/", "http://[::1", "https://h/",
		"http://h:65535/a%20b", "http://h/#f", "http://h:80:80/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURL(raw)
		if err != nil {
			return
		}
		for _, part := range []string{u.HostPort, u.Path, u.Host} {
			for _, c := range []byte(part) {
				if c <= ' ' || c == 0x7f {
					t.Fatalf("ParseURL(%q) kept byte %#x in %q", raw, c, part)
				}
			}
		}
		if !strings.HasPrefix(u.Path, "/") || u.Host == "" || u.Port == 0 || strings.ContainsAny(u.HostPort, "/?#@") {
			t.Fatalf("ParseURL(%q) = %+v", raw, u)
		}
		rebuilt := "http://" + u.HostPort + u.Path
		if rebuilt != raw && "http://"+u.HostPort+u.Path[1:] != raw {
			t.Fatalf("ParseURL(%q) = %+v: rebuilt %q", raw, u, rebuilt)
		}
	})
}
