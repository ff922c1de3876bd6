package minihttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Response is what a route returns.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Route answers one request; it is called for every method, so check it.
type Route func(method, path string) Response

const (
	maxHeaderBytes = 8 << 10
	ioTimeout      = 5 * time.Second
	// MaxConns bounds the connections served at once: a probe answers in well under a
	// millisecond, so more than this means a flood; those over the cap are closed at once
	// rather than given a goroutine each.
	MaxConns = 32
	// maxAcceptDelay caps the back-off after a temporary accept error (EMFILE, ENFILE, …).
	maxAcceptDelay = time.Second
)

// Serve answers one request per connection on ln until ctx ends. It closes ln before it returns,
// whatever the reason, and waits for the connections being served. Temporary accept errors such
// as a full descriptor table are retried with a back-off (5 ms doubling to 1 s): a probe server
// that gave up on EMFILE would leave the port accepting connections nobody answers.
func Serve(ctx context.Context, ln Listener, route Route) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	slots := make(chan struct{}, MaxConns)
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		select {
		case slots <- struct{}{}:
		default:
			_ = conn.Close() // over the cap
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			serveConn(conn, route)
		}()
	}
}

// temporary reports whether an accept error is worth retrying: timeouts, a full descriptor
// table, exhausted buffers, or a connection aborted before it was accepted.
func temporary(err error) bool {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// request is the part of an HTTP/1.x request the routes need.
type request struct {
	method, path string
}

// parseRequest reads a request line and drains the headers. maxHeaderBytes bounds the bytes it
// reads, line terminators included, so a client sending many short lines cannot make it read
// more than a long one. It returns the request, or the status to answer with (400 malformed,
// 431 headers too large), or an error when the connection should just be closed (a request line
// longer than the bound among them).
func parseRequest(br *bufio.Reader) (request, int, error) {
	line, used, err := readLine(br, maxHeaderBytes)
	if err != nil {
		return request{}, 0, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || !strings.HasPrefix(target, "/") || !strings.HasPrefix(proto, "HTTP/1.") {
		return request{}, 400, nil
	}
	for {
		h, n, err := readLine(br, maxHeaderBytes-used)
		if errors.Is(err, errLineTooLong) {
			return request{}, 431, nil
		}
		if err != nil {
			return request{}, 0, err
		}
		used += n
		if h == "" {
			break
		}
	}
	path, _, _ := strings.Cut(target, "?")
	return request{method: method, path: path}, 0, nil
}

func serveConn(conn Conn, route Route) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReaderSize(conn, 1024)
	req, status, err := parseRequest(br)
	if err != nil {
		return
	}
	var res Response
	switch status {
	case 400:
		res = Response{Status: 400, Body: []byte("bad request\n")}
	case 431:
		res = Response{Status: 431, Body: []byte("headers too large\n")}
	default:
		res = route(req.method, req.path)
	}
	if res.ContentType == "" {
		res.ContentType = "text/plain; charset=utf-8"
	}
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		res.Status, statusText(res.Status), res.ContentType, len(res.Body))
	if req.method != "HEAD" {
		_, _ = conn.Write(res.Body)
	}
}

// errLineTooLong is readLine's answer to a line that does not fit its budget.
var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most budget bytes, its terminator ("\n" or "\r\n") included,
// and returns it without the terminator together with the bytes it consumed. Past the budget it
// stops with errLineTooLong, having read at most one buffer's worth beyond it.
func readLine(br *bufio.Reader, budget int) (string, int, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > budget {
			return "", len(b), errLineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			// A last line without its terminator, as bufio's ReadLine
			// returns it.
			return strings.TrimSuffix(string(b), "\r"), len(b), nil
		}
		if err != nil {
			return "", len(b), err
		}
		n := len(b)
		b = b[:n-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		return string(b), n, nil
	}
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	}
	return "Status"
}

// hostsFile is where Post looks up host names; DNS is never queried.
const hostsFile = "/etc/hosts"

// Target is an http:// URL split into what Post needs.
type Target struct {
	Host     string // IP address or name, without brackets
	Port     uint16 // 80 when the URL has none
	HostPort string // as written in the URL, for the Host header
	Path     string // path and query, "/" at least
}

// ParseURL splits an http://HOST[:PORT][/PATH][?QUERY] URL. User information, fragments and
// characters that could end the request line (white space, control characters) are refused.
func ParseURL(raw string) (Target, error) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return Target{}, fmt.Errorf("parse %q: only http:// URLs are supported", raw)
	}
	for _, c := range []byte(rest) {
		if c <= ' ' || c == 0x7f {
			return Target{}, fmt.Errorf("parse %q: white space or control characters are not allowed", raw)
		}
	}
	t := Target{HostPort: rest, Path: "/", Port: 80}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		t.HostPort, t.Path = rest[:i], rest[i:]
		if strings.Contains(t.Path, "#") {
			return Target{}, fmt.Errorf("parse %q: fragments (#...) are not sent to servers; remove it", raw)
		}
		if t.Path[0] == '?' {
			t.Path = "/" + t.Path
		}
	}
	if strings.Contains(t.HostPort, "@") {
		return Target{}, fmt.Errorf("parse %q: user information (user@host) is not supported", raw)
	}
	host, port := t.HostPort, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return Target{}, fmt.Errorf("parse %q: missing ] after an IPv6 address", raw)
		}
		host, port = host[1:end], host[end+1:]
		if port != "" && port[0] != ':' {
			return Target{}, fmt.Errorf("parse %q: want [IPv6]:PORT", raw)
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host, port = host[:i], host[i+1:]
	}
	if host == "" {
		return Target{}, fmt.Errorf("parse %q: no host", raw)
	}
	t.Host = host
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return Target{}, fmt.Errorf("parse %q: bad port %q, want 1-65535", raw, port)
		}
		t.Port = uint16(n)
	}
	return t, nil
}

// Post sends "POST <url>" with an empty body and returns the response status code. Only http://
// URLs are supported, and the host must be an IP address or a name in /etc/hosts (the reload
// endpoint of an application in the same pod: localhost, or the pod's own name).
func Post(ctx context.Context, rawURL string) (int, error) {
	t, err := ParseURL(rawURL)
	if err != nil {
		return 0, err
	}
	conn, err := Dial(ctx, t.Host, t.Port, hostsFile)
	if err != nil {
		return 0, fmt.Errorf("post %s: %w", rawURL, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: podkit-entrypoint\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", t.Path, t.HostPort); err != nil {
		return 0, fmt.Errorf("post %s: send request: %w", rawURL, err)
	}
	line, _, err := readLine(bufio.NewReader(conn), maxHeaderBytes)
	if err != nil {
		return 0, fmt.Errorf("post %s: read response: %w", rawURL, err)
	}
	_, rest, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(strings.SplitN(rest, " ", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("post %s: bad status line %q", rawURL, line)
	}
	return code, nil
}
