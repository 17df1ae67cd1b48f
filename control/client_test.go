package control_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/store"
)

// TestDial_Frozen: a socket that accepts but never answers is a recorder
// holding the file without serving it (store.ErrLocked), not a deadline;
// a stale socket nobody listens on is ErrNoRecorder.
func TestDial_Frozen(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	simtest.FrozenSocket(t, control.SocketPath(db))
	_, err := control.Dial(context.Background(), db)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "does not answer on its control socket") {
		t.Fatalf("err = %v, want store.ErrLocked: does not answer", err)
	}

}

// TestDial_Stale: a socket file nobody listens on (a recorder killed with
// -9 leaves one) is ErrNoRecorder: the caller reads the file itself.
func TestDial_Stale(t *testing.T) {
	db := filepath.Join(t.TempDir(), "run.db")
	ln, err := net.Listen("unix", control.SocketPath(db))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := control.Dial(context.Background(), db); !errors.Is(err, control.ErrNoRecorder) {
		t.Fatalf("err = %v, want ErrNoRecorder", err)
	}
}
