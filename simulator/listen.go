package simulator

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// DefaultAddr is zeusd's default TCP listen address, which Listen uses
// when given neither an address nor a socket path.
const DefaultAddr = "127.0.0.1:4938"

// SocketMode is the permission of the socket file Listen creates:
// zeusd's default, so that any local user can connect (auth, when on,
// is what restricts access).
const SocketMode os.FileMode = 0o666

// Listen listens where zeusd would: on the Unix socket at socket if it is
// set, else on the TCP address addr (DefaultAddr if empty). The socket
// file gets SocketMode whatever the umask. A socket file left over from
// a server that is gone is replaced; a socket a server still listens on,
// or any other file at that path, is left alone and makes Listen fail,
// as zeusd (after 0.5.0) refuses to start over a live socket.
func Listen(addr, socket string) (net.Listener, error) {
	switch {
	case addr != "" && socket != "":
		return nil, ErrAddrAndSocket
	case socket != "":
		if err := removeStaleSocket(socket); err != nil {
			return nil, err
		}
		ln, err := net.Listen("unix", socket)
		if err != nil {
			return nil, fmt.Errorf("socket path: %w", err)
		}
		if err := os.Chmod(socket, SocketMode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("socket path: %w", err)
		}
		return ln, nil
	case addr == "":
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes the socket file at path if nothing accepts
// connections on it any more. It leaves other files, and sockets it
// cannot tell are stale, for net.Listen to refuse.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket path %s: a server is listening on it: %w", path, syscall.EADDRINUSE)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("socket path: remove stale socket: %w", err)
	}
	return nil
}
