package minihttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServeAnswersRoutesForStandardClients(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Serve(ctx, ln, func(method, path string) Response {
			if path == "/healthz" && method == "GET" {
				return Response{Status: 200, Body: []byte("ok\n")}
			}
			return Response{Status: 404, Body: []byte("not found\n")}
		})
	}()
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, "ok\n"},
		{"/healthz?verbose=1", 200, "ok\n"},
		{"/nope", 404, "not found\n"},
	}
	for _, tt := range tests {
		resp, err := http.Get("http://" + ln.Addr().String() + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status || string(b) != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.StatusCode, b, tt.status, tt.body)
		}
	}
	// A malformed request gets 400, not a hang.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("garbage\r\n\r\n"))
	b, _ := io.ReadAll(c)
	_ = c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Errorf("malformed request answered %q, want 400", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after cancel, want nil", err)
	}
}

func TestPostReportsStatusAndRejectsHTTPS(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.RequestURI()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	code, err := Post(context.Background(), srv.URL+"/-/reload?x=1")
	if err != nil || code != http.StatusAccepted {
		t.Errorf("Post = %d, %v; want 202", code, err)
	}
	if got != "POST /-/reload?x=1" {
		t.Errorf("server saw %q", got)
	}
	if _, err := Post(context.Background(), "https://example.invalid/"); err == nil || !strings.Contains(err.Error(), "only http://") {
		t.Errorf("https error = %v, want one saying only http:// works", err)
	}
}
