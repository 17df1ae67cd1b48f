package control

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketPath is where clients find the control socket of the database
// file db: the socket itself, or a symbolic link to it (see Listen).
func SocketPath(db string) string { return db + ".sock" }

// maxSocketPath is the longest path a Unix socket can be bound at or
// connected to: sun_path holds 108 bytes on Linux and 104 on macOS, with
// the terminating NUL.
const maxSocketPath = 103

// ErrSocketPath means no control socket could be made for a file: its
// path is too long and no short private directory could be used.
var ErrSocketPath = errors.New("no place for the control socket")

// Listener is a recorder's control socket, bound with mode 0600.
type Listener struct {
	net.Listener
	socket  string // where it is bound
	pointer string // the symbolic link at SocketPath(db) to socket, if any
}

// Listen binds the control socket of db at SocketPath(db), replacing a
// stale one (a socket nobody answers on, or a link to one). When that
// path is too long for a Unix socket, the socket goes in a short private
// directory ($XDG_RUNTIME_DIR/wattrec, else /tmp/wattrec-UID, mode 0700
// and owned by this user) under a name hashed from db's absolute path,
// and SocketPath(db) becomes a symbolic link to it, which Dial follows.
// It fails, with ErrSocketPath, rather than leave a recorder without one.
func Listen(db string) (*Listener, error) {
	pointer := SocketPath(db)
	if err := clearStale(pointer); err != nil {
		return nil, err
	}
	if len(pointer) <= maxSocketPath {
		ln, err := listenPrivate(pointer)
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w", pointer, err)
		}
		return &Listener{Listener: ln, socket: pointer}, nil
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		return nil, fmt.Errorf("control socket of %s: %w", db, err)
	}
	dir, err := runtimeDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than a Unix socket path takes (%d), and %v", ErrSocketPath, pointer, len(pointer), maxSocketPath, err)
	}
	sum := sha256.Sum256([]byte(abs))
	socket := filepath.Join(dir, hex.EncodeToString(sum[:8])+".sock")
	if len(socket) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s and %s are both too long for a Unix socket", ErrSocketPath, pointer, socket)
	}
	if err := clearStale(socket); err != nil {
		return nil, err
	}
	ln, err := listenPrivate(socket)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", socket, err)
	}
	if err := os.Symlink(socket, pointer); err != nil {
		ln.Close()
		os.Remove(socket)
		return nil, fmt.Errorf("%w: link %s to %s: %v", ErrSocketPath, pointer, socket, err)
	}
	return &Listener{Listener: ln, socket: socket, pointer: pointer}, nil
}

// remove closes the socket and removes its files.
func (l *Listener) remove() error {
	err := l.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	os.Remove(l.socket)
	if l.pointer != "" {
		os.Remove(l.pointer)
	}
	return err
}

// dialPath is the path a client connects to for SocketPath(db): the link's
// target when it is a link.
func dialPath(db string) (string, error) {
	path := SocketPath(db)
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	return os.Readlink(path)
}

// clearStale removes the socket (or link to one) at path when nobody
// answers on it: a recorder killed with -9 leaves it behind. Anything
// else in the way is an error.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	target := path
	if fi.Mode()&os.ModeSymlink != 0 {
		if target, err = os.Readlink(path); err != nil {
			return fmt.Errorf("control socket %s: %w", path, err)
		}
	} else if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
	}
	if len(target) <= maxSocketPath {
		if c, err := net.DialTimeout("unix", target, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s: another recorder is answering on it", path)
		}
	}
	os.Remove(path)
	return nil
}

// listenPrivate binds the socket inside a fresh 0700 directory, sets it to
// 0600 and only then moves it into place: the API has no token, so no
// other user may ever reach it, not even between bind and chmod.
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wattrec-sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // the Listener removes path itself
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// runtimeDir is a short directory for sockets that only this user can
// reach: $XDG_RUNTIME_DIR/wattrec when that is short, else
// $TMPDIR/wattrec-UID. It is made with mode 0700, and refused if it exists
// as anything but a directory of this user's with mode 0700.
func runtimeDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("wattrec-%d", os.Getuid()))
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) && len(x) < 64 {
		dir = filepath.Join(x, "wattrec")
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 || !ok || int(st.Uid) != os.Getuid() {
		return "", fmt.Errorf("%s is not a private directory of this user (mode 0700)", dir)
	}
	return dir, nil
}
