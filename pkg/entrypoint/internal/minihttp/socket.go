package minihttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The listener and the client below use sockets directly, polled by the Go runtime through
// os.File, instead of package net: the entrypoint needs one TCP listener and one loopback POST,
// and net (its resolver, its DNS message parser, its address types) was about 400 KiB of the
// binary, all of it mapped into PID 1's resident memory. What this costs: host names are not
// resolved through DNS (IP literals and /etc/hosts only), which is what a container's own
// probes and reload hooks use.

// Conn is one accepted or dialled connection.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// Listener yields connections until it is closed.
type Listener interface {
	Accept() (Conn, error)
	Close() error
}

// sockConn is a connected TCP socket. Writes use send(MSG_NOSIGNAL): a peer that went away must
// give this process EPIPE, never a SIGPIPE, which PID 1 would take for a signal to forward.
type sockConn struct {
	*os.File
}

func (c sockConn) Write(p []byte) (int, error) {
	rc, err := c.File.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for total < len(p) {
			n, err := unix.SendmsgN(int(fd), p[total:], nil, nil, unix.MSG_NOSIGNAL)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false // wait until writable
			}
			if err != nil {
				werr = os.NewSyscallError("sendmsg", err)
				return true
			}
			total += n
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return total, err
}

// SocketListener is a TCP listener on a non-blocking socket.
type SocketListener struct {
	f    *os.File
	addr netip.AddrPort
}

// Listen listens on addr, "HOST:PORT" or ":PORT" (every address, IPv4 and IPv6). HOST is an IP
// address, or "localhost" for the loopback address.
func Listen(addr string) (*SocketListener, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return nil, fmt.Errorf("listen on %q: want HOST:PORT or :PORT with a port 0-65535", addr)
	}
	host := addr[:i]
	port, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: want HOST:PORT or :PORT with a port 0-65535", addr)
	}
	if b := strings.HasPrefix(host, "["); b != strings.HasSuffix(host, "]") || (!b && strings.Contains(host, ":")) {
		return nil, fmt.Errorf("listen on %q: write an IPv6 address in brackets, e.g. [::1]:8081", addr)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	var ip netip.Addr
	switch host {
	case "":
		ip = netip.IPv6Unspecified()
	case "localhost":
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		if ip, err = netip.ParseAddr(host); err != nil {
			return nil, fmt.Errorf("listen on %q: %q is not an IP address (use an address, localhost, or :PORT for all)", addr, host)
		}
	}
	l, err := listen(ip.Unmap(), uint16(port), host == "")
	if err != nil && host == "" && errors.Is(err, unix.EAFNOSUPPORT) {
		l, err = listen(netip.IPv4Unspecified(), uint16(port), false) // a kernel without IPv6
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	return l, nil
}

// tcpSocket opens a non-blocking TCP socket of ip's family.
func tcpSocket(ip netip.Addr) (int, error) {
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

func listen(ip netip.Addr, port uint16, dualStack bool) (*SocketListener, error) {
	fd, err := tcpSocket(ip)
	if err != nil {
		return nil, err
	}
	fail := func(op string, err error) (*SocketListener, error) {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError(op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if dualStack {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(ip, port)); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return &SocketListener{f: os.NewFile(uintptr(fd), "tcp-listener"), addr: addrPort(sa)}, nil
}

// Addr is the address listened on (with the port the kernel chose for port 0).
func (l *SocketListener) Addr() netip.AddrPort { return l.addr }

// Accept waits for the next connection. After Close it returns an error wrapping os.ErrClosed.
func (l *SocketListener) Accept() (Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if aerr != unix.EINTR {
				return aerr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return sockConn{os.NewFile(uintptr(nfd), "tcp-conn")}, nil
}

// Close stops the listener; a pending Accept returns.
func (l *SocketListener) Close() error { return l.f.Close() }

func sockaddr(ip netip.Addr, port uint16) unix.Sockaddr {
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	return &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// Dial connects to host:port over TCP. host is an IP address, or a name found in hostsFile
// (normally /etc/hosts); "localhost" is always the loopback address. DNS is never queried.
func Dial(ctx context.Context, host string, port uint16, hostsFile string) (Conn, error) {
	ips, err := resolve(host, hostsFile)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range ips {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := dial(ctx, ip, port)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s port %d: %w", host, port, errors.Join(errs...))
}

func dial(ctx context.Context, ip netip.Addr, port uint16) (Conn, error) {
	fd, err := tcpSocket(ip)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, sockaddr(ip, port)); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "tcp-conn")
	if dl, ok := ctx.Deadline(); ok {
		_ = f.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	var soErr int
	var gerr error
	err = rc.Write(func(fd uintptr) bool {
		soErr, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		return gerr != nil || soErr != int(unix.EINPROGRESS)
	})
	switch {
	case err != nil:
	case gerr != nil:
		err = os.NewSyscallError("getsockopt", gerr)
	case soErr != 0:
		err = os.NewSyscallError("connect", unix.Errno(soErr))
	}
	if err != nil {
		_ = f.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = f.SetDeadline(time.Time{})
	return sockConn{f}, nil
}

// resolve returns host's addresses: the literal, the loopback for "localhost", or the entries of
// hostsFile, IPv4 first.
func resolve(host, hostsFile string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	var v4, v6 []netip.Addr
	if b, err := os.ReadFile(hostsFile); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			ip, err := netip.ParseAddr(f[0])
			if err != nil {
				continue
			}
			for _, name := range f[1:] {
				if strings.EqualFold(name, host) {
					if ip.Unmap().Is4() {
						v4 = append(v4, ip.Unmap())
					} else {
						v6 = append(v6, ip)
					}
					break
				}
			}
		}
	}
	if len(v4)+len(v6) == 0 && strings.EqualFold(host, "localhost") {
		v4 = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	if len(v4)+len(v6) == 0 {
		return nil, fmt.Errorf("resolve %q: not an IP address and not in %s (podkit-entrypoint does not query DNS; use an address or a name from %s)", host, hostsFile, hostsFile)
	}
	return append(v4, v6...), nil
}
