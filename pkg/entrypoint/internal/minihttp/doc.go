// Package minihttp is just enough HTTP/1.1 for podkit-entrypoint's probes and reload hook: a
// server answering GET requests from a route function and a client sending an empty POST to an
// http:// URL. It exists because net/http (with crypto/tls) more than doubles the PID-1 binary and
// its resident memory. It does not do keep-alive, chunked bodies, TLS or request bodies.
package minihttp
