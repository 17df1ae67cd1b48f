package control_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// endless answers every export with bytes until the write fails, and
// tells how that export ended.
type endless struct {
	ended chan error
}

func (e *endless) Export(ctx context.Context, w io.Writer, _ export.Request) error {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := w.Write(chunk); err != nil {
			e.ended <- err
			return err
		}
		if err := ctx.Err(); err != nil {
			e.ended <- err
			return err
		}
	}
}

func (e *endless) Query(ctx context.Context, w io.Writer, _ query.Options) error {
	_, err := io.WriteString(w, "report\n")
	return err
}

func (e *endless) Plot(context.Context, io.Writer, chart.Request) error { return nil }

func (e *endless) Report(context.Context, io.Writer, report.Request) error { return nil }

func (e *endless) Info(ctx context.Context, w io.Writer, _ string) error {
	<-ctx.Done() // a read that takes as long as its client waits
	return ctx.Err()
}

func (e *endless) Marks(context.Context, string) ([]store.Mark, error) { return nil, nil }

func (e *endless) Mark(context.Context, control.MarkRequest) (store.Mark, error) {
	return store.Mark{}, nil
}

func serveEndless(t *testing.T, srv *control.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln := mustListen(t, path)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(control.SocketPath(path)); err == nil {
			return path
		}
		if time.Now().After(deadline) {
			t.Fatal("control socket did not appear")
		}
		<-time.After(5 * time.Millisecond)
	}
}

// TestServer_PausedClient: a client that stops reading an answer is cut
// off after the write timeout, and others are served meanwhile.
func TestServer_PausedClient(t *testing.T) {
	t.Parallel()
	be := &endless{ended: make(chan error, 1)}
	path := serveEndless(t, &control.Server{Backend: be, DB: "w.db", WriteTimeout: 300 * time.Millisecond})

	// A raw client that asks for an export and never reads it.
	conn, err := net.Dial("unix", control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"format":"csv"}`
	fmt.Fprintf(conn, "POST /v1/export HTTP/1.1\r\nHost: recorder\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)

	// Others are answered while it sits there.
	c, err := control.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	if err := c.Query(context.Background(), &out, query.Options{}); err != nil || out.String() != "report\n" {
		t.Fatalf("query beside a paused client: %q, %v", out.String(), err)
	}

	select {
	case err := <-be.ended:
		if err == nil || !strings.Contains(err.Error(), "stopped reading") {
			t.Fatalf("the paused export ended with %v, want a write timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a client that stopped reading was not cut off")
	}
}

// TestServer_Busy: reads beyond MaxReads wait, then get ErrBusy through
// the socket.
func TestServer_Busy(t *testing.T) {
	t.Parallel()
	be := &endless{ended: make(chan error, 1)}
	path := serveEndless(t, &control.Server{Backend: be, DB: "w.db", MaxReads: 1, QueueTimeout: 200 * time.Millisecond})
	c, err := control.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The one slot: an info that lasts as long as its client waits.
	infoCtx, stopInfo := context.WithCancel(context.Background())
	infoDone := make(chan error, 1)
	go func() { infoDone <- c.Info(infoCtx, io.Discard, "") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Query(context.Background(), io.Discard, query.Options{})
		if errors.Is(err, control.ErrBusy) {
			break // the info holds the slot
		}
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the second read was never refused as busy")
		}
	}
	stopInfo()
	<-infoDone
	// The server frees the slot once it sees the client gone.
	for {
		err := c.Query(context.Background(), io.Discard, query.Options{})
		if err == nil {
			break
		}
		if !errors.Is(err, control.ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("query once the slot is free: %v", err)
		}
	}
}
