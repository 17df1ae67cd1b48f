package control_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// serve starts a control server on a fresh file with a few readings.
func serve(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := store.Batch{Sessions: []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: 0, End: 10_000, Open: true}}}
	for i := int64(0); i < 10; i++ {
		b.Readings = append(b.Readings, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: i * 1000, DaemonMs: i * 1000, MilliWatts: 100_000 + i})
	}
	if err := db.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	flushes := 0
	srv := &control.Server{DB: db, Flush: func(context.Context) error { flushes++; return nil },
		Mark: func(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
			return control.ApplyMark(ctx, db, req, 5_000)
		}}
	go func() { done <- srv.Serve(ctx, control.SocketPath(path)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(control.SocketPath(path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
		db.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(control.SocketPath(path)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("control socket did not appear")
		}
		<-time.After(5 * time.Millisecond)
	}
	return db, path
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	db, path := serve(t)

	fi, err := os.Stat(control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %o, want 600", got)
	}
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("QuerySameAsLocal", func(t *testing.T) {
		req := control.QueryRequest{Options: query.Options{Filter: query.Filter{Range: query.Between(500, 9500)}}, Format: "csv"}
		var remote, local bytes.Buffer
		if err := c.Query(ctx, &remote, req); err != nil {
			t.Fatal(err)
		}
		if err := control.Query(ctx, &local, db, req); err != nil {
			t.Fatal(err)
		}
		if remote.String() != local.String() || !strings.Contains(remote.String(), "n1:4938 gpu:0") {
			t.Fatalf("remote:\n%s\nlocal:\n%s", remote.String(), local.String())
		}
	})
	t.Run("ErrorsComeBack", func(t *testing.T) {
		err := c.Query(ctx, &bytes.Buffer{}, control.QueryRequest{Options: query.Options{By: "node"}})
		if err == nil || !strings.Contains(err.Error(), `group by "node"`) {
			t.Fatalf("err = %v", err)
		}
		err = c.Export(ctx, &bytes.Buffer{}, control.ExportRequest{Filter: query.Filter{Endpoints: []string{"nope:1"}}})
		if err == nil || !strings.Contains(err.Error(), `endpoint "nope:1" is not in`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Marks", func(t *testing.T) {
		m, err := c.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "epoch"})
		if err != nil || m.ID == 0 || !m.Open || m.BeginMs != 5_000 {
			t.Fatalf("begin: %+v, %v", m, err)
		}
		if _, err := c.Mark(ctx, control.MarkRequest{Action: "pause", Name: "epoch"}); err == nil || !strings.Contains(err.Error(), `mark action "pause"`) {
			t.Fatalf("bad action: %v", err)
		}
		if _, err := c.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "a\nb"}); err == nil {
			t.Fatal("a name with a newline was accepted")
		}
		marks, err := c.Marks(ctx, "epoch")
		if err != nil || len(marks) != 1 || marks[0].ID != m.ID {
			t.Fatalf("marks = %+v, %v", marks, err)
		}
	})
}

func TestDial_NoRecorder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	if _, err := control.Dial(context.Background(), path); !errors.Is(err, control.ErrNoRecorder) {
		t.Fatalf("no socket: %v", err)
	}
	// A stale socket file (a recorder killed with -9) is no recorder either.
	ln, err := net.Listen("unix", control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := control.Dial(context.Background(), path); !errors.Is(err, control.ErrNoRecorder) {
		t.Fatalf("stale socket: %v", err)
	}
	// And a new recorder replaces it.
	_, _ = serveOn(t, path)
}

func serveOn(t *testing.T, path string) (*store.DB, error) {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&control.Server{DB: db}).Serve(ctx, control.SocketPath(path)) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := control.Dial(context.Background(), path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not replace the stale socket")
		}
		<-time.After(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return db, db.Close()
}
