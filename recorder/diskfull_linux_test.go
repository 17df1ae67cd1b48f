package recorder_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// TestRecorder_DiskFullTmpfs records into a bbolt file on a 2 MiB tmpfs
// until the file system is full, then frees space: the recorder goes
// on, and the file holds exactly what the daemon sent. It needs root to
// mount the tmpfs.
func TestRecorder_DiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	db, err := store.Open(filepath.Join(mnt, "w.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the unmount
		if err := db.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})

	// Ballast: fill the file system but for a few pages.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	const slack = 16 << 10
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, bytes.Repeat([]byte{0}, int(int64(st.Bavail)*st.Bsize-slack)), 0o600); err != nil {
		t.Fatal(err)
	}

	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, stopSim := simtest.Start(t, cfg, "unix")
	r, rec, logs := startDiskFull(t, db, srv, nil)

	simtest.WaitFor(t, func() bool { return logs.count(logDiskFull) > 0 })
	full := sent.Events()
	sent.WaitEvents(t, full+500) // the streams go on
	checkFlushDiskFull(t, rec)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	simtest.WaitFor(t, func() bool { return logs.count(logRecovered) > 0 })

	stopSim()
	stopWhenStored(t, db, r, sent.Values())
	checkSessionsWhole(t, db, srv.Endpoint())
	size, _ := db.Size()
	t.Logf("sent %d values (%d events, %d during the outage); backlog of %d readings stored after %d failed attempts; file %d KiB",
		simtest.Count(sent.Values()), sent.Events(), sent.Events()-full, logs.int64Attr(t, logRecovered, "readings"),
		logs.int64Attr(t, logRecovered, "attempts"), size>>10)
}
