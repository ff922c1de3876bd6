package minihttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
)

// Serve answers one request per connection on ln until ctx ends, then closes ln and waits for
// the connections being served.
func Serve(ctx context.Context, ln net.Listener, route Route) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(conn, route)
		}()
	}
}

func serveConn(conn net.Conn, route Route) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReaderSize(conn, 1024)
	line, err := readLine(br)
	if err != nil {
		return
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	var res Response
	if !ok1 || !ok2 || !strings.HasPrefix(proto, "HTTP/1.") {
		res = Response{Status: 400, Body: []byte("bad request\n")}
	} else {
		// Drain the headers; nothing in them matters here.
		total := len(line)
		for {
			h, err := readLine(br)
			if err != nil {
				return
			}
			if total += len(h); total > maxHeaderBytes {
				res = Response{Status: 431, Body: []byte("headers too large\n")}
				break
			}
			if h == "" {
				break
			}
		}
		if res.Status == 0 {
			path, _, _ := strings.Cut(target, "?")
			res = route(method, path)
		}
	}
	if res.ContentType == "" {
		res.ContentType = "text/plain; charset=utf-8"
	}
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		res.Status, statusText(res.Status), res.ContentType, len(res.Body))
	if method != "HEAD" {
		_, _ = conn.Write(res.Body)
	}
}

func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxHeaderBytes {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
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

// Post sends "POST <url>" with an empty body and returns the response status code. Only http://
// URLs are supported.
func Post(ctx context.Context, rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", rawURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return 0, fmt.Errorf("post %s: only http://host[:port]/path URLs are supported", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", host, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: podkit-entrypoint\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host)
	line, err := readLine(bufio.NewReader(conn))
	if err != nil {
		return 0, fmt.Errorf("read response from %s: %w", host, err)
	}
	_, rest, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(strings.SplitN(rest, " ", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("bad status line from %s: %q", host, line)
	}
	return code, nil
}
