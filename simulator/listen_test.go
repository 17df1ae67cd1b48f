package simulator_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wattrec/wattrec/simulator"
)

// checkNoFlag fails if err's text names a command-line flag: main adds
// those.
func checkNoFlag(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "--") {
		t.Errorf("error %q names a command-line flag", err)
	}
}

// mustNotListen checks that Listen(addr, socket) fails, with an error
// that names no flag, and returns that error.
func mustNotListen(t *testing.T, addr, socket, what string) error {
	t.Helper()
	ln, err := simulator.Listen(addr, socket)
	if err == nil {
		ln.Close()
		t.Fatalf("Listen(%q, %q) %s", addr, socket, what)
	}
	checkNoFlag(t, err)
	return err
}

// mustListenSocket listens on the socket at path with Listen until
// cleanup, and checks that it accepts connections.
func mustListenSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := simulator.Listen("", path)
	if err != nil {
		t.Fatalf("Listen on socket %s: %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	mustDial(t, path)
}

// mustDial checks that something accepts connections on the socket.
func mustDial(t *testing.T, path string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
}

func TestListen(t *testing.T) {
	t.Run("TCP", func(t *testing.T) {
		ln, err := simulator.Listen("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok || !addr.IP.IsLoopback() || addr.Port == 0 {
			t.Errorf("listening on %v, want a loopback TCP port", ln.Addr())
		}
	})
	t.Run("DefaultAddr", func(t *testing.T) {
		// The port may be taken on this machine: then the error names it.
		ln, err := simulator.Listen("", "")
		if err != nil {
			if !strings.Contains(err.Error(), simulator.DefaultAddr) {
				t.Errorf("error %q does not name %s", err, simulator.DefaultAddr)
			}
			checkNoFlag(t, err)
			return
		}
		defer ln.Close()
		if got, want := ln.Addr().String(), simulator.DefaultAddr; got != want {
			t.Errorf("listening on %s, want %s", got, want)
		}
	})
	t.Run("BothGiven", func(t *testing.T) {
		err := mustNotListen(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "z.sock"), "listened with an address and a socket path")
		if !errors.Is(err, simulator.ErrAddrAndSocket) {
			t.Errorf("error %q, want ErrAddrAndSocket", err)
		}
	})
	t.Run("Socket", func(t *testing.T) {
		mustListenSocket(t, filepath.Join(t.TempDir(), "z.sock"))
	})
	t.Run("SocketMode666", func(t *testing.T) {
		// zeusd's socket is mode 666 whatever the umask.
		defer syscall.Umask(syscall.Umask(0o077))
		path := filepath.Join(t.TempDir(), "z.sock")
		mustListenSocket(t, path)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), simulator.SocketMode; got != want || want != 0o666 {
			t.Errorf("socket mode %v, want %v (0666)", got, want)
		}
	})
	t.Run("StaleSocketReplaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "z.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false) // a server that died
		old.Close()
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("no stale socket file left: %v", err)
		}
		mustListenSocket(t, path)
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 {
			t.Errorf("replacement socket: %v, %v; want mode 0666", fi, err)
		}
	})
	t.Run("LiveSocketKept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "z.sock")
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan struct{})
		go func() { // the running server
			defer close(served)
			for {
				c, err := live.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		defer func() { live.Close(); <-served }()
		err = mustNotListen(t, "", path, "took over the socket of a running server")
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("error %q, want EADDRINUSE", err)
		}
		mustDial(t, path) // the running server still has its socket
	})
	t.Run("NotASocket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := mustNotListen(t, "", path, "replaced a file that is not a socket")
		if !strings.Contains(err.Error(), "socket path") {
			t.Errorf("error %q does not say it is about the socket path", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Errorf("the file was changed: %q, %v", b, err)
		}
	})
}
