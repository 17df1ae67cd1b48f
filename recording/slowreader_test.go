package recording_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestDaemon_PausedExport: an export over the control socket whose
// client stops reading (`wattrec export | less`, left paused) does not
// stall the recording. While it sits, commits go on (the file grows past
// bbolt's mapping, which used to wait for the export's read
// transaction), other clients are answered, everything the daemon sent
// is stored, and the report over the pause has no gap.
func TestDaemon_PausedExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// An earlier recording in the file, big enough that its export fills
	// the socket's buffers many times over.
	rng := rand.New(rand.NewPCG(1, 2))
	d := startDaemon(t, func(db *store.DB) {
		old := &store.Batch{}
		for i := range int64(200_000) {
			at := 1_700_000_000_000 + i*50
			old.Readings = append(old.Readings, store.Reading{Endpoint: "old:4938", Kind: store.KindGPU, TimeMs: at, DaemonMs: at, MilliWatts: 60_000 + rng.Int64N(200_000)})
		}
		if err := db.Write(ctx, old); err != nil {
			t.Fatal(err)
		}
	})
	sent, srv, stopSim, path, db := d.sent, d.srv, d.stopSim, d.path, d.DB

	// The paused reader: it asks for the old recording and reads nothing.
	conn, err := net.Dial("unix", control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"format":"jsonl","endpoints":["old:4938"]}`
	fmt.Fprintf(conn, "POST /v1/export HTTP/1.1\r\nHost: recorder\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	pauseFrom := time.Now().UnixMilli()

	// While it sits: the file grows well past bbolt's mapping (a bulk
	// write beside the recorder's commits), the daemon keeps sending,
	// and another client is answered with fresh data.
	fileSize := func() int64 { n, _ := db.Size(); return n }
	size0, events0 := fileSize(), sent.Events()
	bulk := &store.Batch{}
	for i := range int64(600_000) {
		at := 1_700_000_000_000 + i*50
		bulk.Readings = append(bulk.Readings, store.Reading{Endpoint: "bulk:4938", Kind: store.KindGPU, Device: int32(i % 8), TimeMs: at, DaemonMs: at, MilliWatts: rng.Int64N(1 << 30)})
	}
	wrote := make(chan error, 1)
	go func() { wrote <- db.Write(ctx, bulk) }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a commit that grows the file waited on the paused export")
	}
	if fileSize() < 2*size0 {
		t.Fatalf("the file grew from %d to %d bytes only: bbolt did not have to remap it", size0, fileSize())
	}
	sent.WaitEvents(t, events0+1000)
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	infoCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var info strings.Builder
	if err := c.Info(infoCtx, &info, ""); err != nil {
		t.Fatalf("info beside the paused export: %v", err)
	}
	cancel()
	c.Close()
	pauseTo := time.Now().UnixMilli()
	sent.WaitEvents(t, sent.Events()+200) // readings that cover the pause's end

	// Stop the daemon's streams first, so that nothing is in flight, then
	// the recorder once it has what was sent.
	conn.Close()
	stopSim()
	ours := func() map[simtest.Value]int {
		got, _ := simtest.Stored(t, db)
		for v := range got {
			if v.DaemonMs < 1_750_000_000_000 { // the earlier recording and the bulk write
				delete(got, v)
			}
		}
		return got
	}
	simtest.WaitFor(t, func() bool { return simtest.Covers(ours(), sent.Values()) })
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	simtest.Diff(t, ours(), sent.Values())
	rep, err := query.Energy(ctx, db, query.Options{By: query.ByTotal,
		Filter: query.Filter{Range: query.Between(pauseFrom, pauseTo), Endpoints: []string{srv.Address}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Rows[0]; r.Coverage() != 1 || r.Gaps != 0 {
		t.Errorf("over the pause (%d ms): coverage %.4f, %d gaps; want 1 and none", pauseTo-pauseFrom, r.Coverage(), r.Gaps)
	}
	t.Logf("paused %d ms: %d events sent, file %d → %d bytes, all stored, coverage %.4f",
		pauseTo-pauseFrom, sent.Events()-events0, size0, fileSize(), rep.Rows[0].Coverage())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
