package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// TestCLI_RefusesBadNumbers: each setting out of its limits is refused
// with an error that names the flag and the limit, before any file is
// created.
func TestCLI_RefusesBadNumbers(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "existing.db")
	simtest.WriteRecording(t, rec)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"MaxBackoffZero", []string{"record", "--max-backoff", "0"}, "--max-backoff 0s: want at least 100ms"},
		{"MaxBackoffNegative", []string{"record", "--max-backoff", "-1s"}, "--max-backoff -1s: want at least 100ms"},
		{"FlushInterval", []string{"record", "--flush-interval", "1ns"}, "--flush-interval 1ns: want at least 10ms"},
		{"FlushIntervalZero", []string{"record", "--flush-interval", "0"}, "--flush-interval 0s: want at least 10ms"},
		{"ClockIntervalNegative", []string{"record", "--clock-interval", "-1m"}, "--clock-interval -1m0s: want 0 (off) or at least 10ms"},
		{"ClockIntervalTiny", []string{"record", "--clock-interval", "1us"}, "--clock-interval 1µs: want 0 (off) or at least 10ms"},
		{"CounterIntervalNegative", []string{"record", "--counter-interval", "-10s"}, "--counter-interval -10s: want 0 (off) or at least 10ms"},
		{"ClockSamplesHuge", []string{"record", "--clock-samples", "100000"}, "--clock-samples 100000: want 5 to 100"},
		{"ClockSamplesFew", []string{"record", "--clock-samples", "2"}, "--clock-samples 2: want 5 to 100"},
		{"MemoryLimitSmall", []string{"record", "--memory-limit", "1MiB"}, "--memory-limit 1MiB: want 0 (the runtime's own) or at least 8MiB"},
		{"MemoryLimitWord", []string{"record", "--memory-limit", "lots"}, `--memory-limit "lots": want a size such as 64MiB, auto or off`},
		{"MemoryLimitUnit", []string{"record", "--memory-limit", "64Mi"}, `--memory-limit "64Mi": want a size such as 64MiB, auto or off`},
		{"RunMaxBackoff", []string{"run", "--max-backoff", "1ms", "--", "true"}, "--max-backoff 1ms: want at least 100ms"},
		{"QueryCPUPeriod", []string{"query", "--db", rec, "--cpu-period", "1ns"}, "--cpu-period 1ns: want a poll period of at least 1ms"},
		{"ExportCPUPeriod", []string{"export", "--db", rec, "--cpu-period", "999us"}, "--cpu-period 999µs: want a poll period of at least 1ms"},
		{"ExportGrid", []string{"export", "--db", rec, "-o", "x.parquet", "--grid", "1ns"}, "--grid 1ns: want a bin width of at least 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			db := filepath.Join(t.TempDir(), "new.db")
			if args[0] == "record" || args[0] == "run" {
				args = append([]string{args[0], "--db", db, "--server", "node1:4938"}, args[1:]...)
			}
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if args[0] == "record" || args[0] == "run" {
				if !errors.Is(err, recorder.ErrSetting) {
					t.Errorf("err = %v, want it to match recorder.ErrSetting", err)
				}
				if _, err := os.Stat(db); err == nil {
					t.Error("a refused setting left a new file")
				}
			}
		})
	}
}

// TestCLI_EmptyDB: --db ” is an empty path, said so with the flag's
// name, for every command that takes --db.
func TestCLI_EmptyDB(t *testing.T) {
	for _, args := range [][]string{
		{"info", "--db", ""}, {"query", "--db", ""}, {"export", "--db", ""}, {"mark", "list", "--db", ""},
		{"mark", "add", "--db", "", "--from", "0", "--to", "1", "m"}, {"check", "--db", ""}, {"repair", "--db", "", "-o", "x.db"},
		{"record", "--db", "", "--server", "node1:4938"}, {"demo", "--db", ""},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), "--db is empty") {
				t.Fatalf("err = %v, want one saying --db is empty", err)
			}
		})
	}
}

// TestCLI_TokenFileMode: a token file others may read is refused, as ssh
// refuses such a key, naming the file, its mode and the chmod to run.
func TestCLI_TokenFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o644, "has mode 0644"},
		{0o640, "has mode 0640"},
		{0o604, "has mode 0604"},
		{0o600, "cannot reach zeusd"}, // accepted: the start fails later, at the daemon
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			tok := filepath.Join(dir, "token-"+tc.mode.String())
			if err := os.WriteFile(tok, []byte("secret.jwt\n"), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(tok, tc.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			out, err := run(t, "record", "--db", filepath.Join(dir, "run.db"), "--server", "unix://"+filepath.Join(dir, "none.sock"),
				"--token-file", tok, "--log-level", "error")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if tc.mode != 0o600 && (!strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), "chmod 600 "+tok)) {
				t.Errorf("err = %v, want it to name the file and the chmod", err)
			}
			if strings.Contains(err.Error()+out, "secret.jwt") {
				t.Error("the token reached the output")
			}
		})
	}
}

// TestRecord_FailedStart: a record whose startup checks fail leaves no
// new file behind, and an existing file exactly as it was (no run record).
func TestRecord_FailedStart(t *testing.T) {
	dir := t.TempDir()
	args := func(db string) []string {
		return []string{"record", "--db", db, "--server", "unix://" + filepath.Join(dir, "none.sock"), "--log-level", "error"}
	}
	t.Run("NewFile", func(t *testing.T) {
		db := filepath.Join(dir, "new.db")
		if _, err := run(t, args(db)...); err == nil || !strings.Contains(err.Error(), "cannot reach zeusd") {
			t.Fatalf("err = %v, want the unreachable daemon", err)
		}
		if _, err := os.Stat(db); err == nil {
			t.Error("the failed start left the new file")
		}
	})
	t.Run("EmptyFile", func(t *testing.T) {
		db := filepath.Join(dir, "empty.db")
		if err := os.WriteFile(db, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, args(db)...); err == nil {
			t.Fatal("started")
		}
		if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
			t.Errorf("the failed start left the empty file %v (%v)", fi.Size(), err)
		}
	})
	t.Run("ExistingFile", func(t *testing.T) {
		db := filepath.Join(dir, "existing.db")
		simtest.WriteRecording(t, db)
		before := hashFile(t, db)
		// A receiver waiting too: nothing is pushed, no position stored.
		s, url := newSink(t)
		if _, err := run(t, append(args(db), "--remote-write", url, "--metrics-listen", "127.0.0.1:0")...); err == nil {
			t.Fatal("started")
		}
		if hashFile(t, db) != before || s.requests() != 0 {
			t.Errorf("the failed start changed the existing file, or pushed (%d requests)", s.requests())
		}
	})
}

// TestMarkAdd_MissingFile: mark add on a file that does not exist (a
// typo) is refused, naming the file, and creates nothing.
func TestMarkAdd_MissingFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "typo.db")
	_, err := run(t, "mark", "add", "--db", db, "--from", "2026-11-28T16:00:00Z", "--to", "2026-11-28T16:01:00Z", "warmup")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), db) {
		t.Fatalf("err = %v, want one saying %s does not exist", err, db)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("mark add created the file")
	}
}

// TestExport_ForceRefusesNonRegular: even with --force, export replaces
// only a regular file, and says what is there instead (export's own
// tests cover every kind).
func TestExport_ForceRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	simtest.WriteRecording(t, db)
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{{fifo, "named pipe"}, {os.DevNull, "character device"}} {
		_, err := run(t, "export", "--db", db, "-o", tc.path, "--format", "jsonl", "--force")
		if !errors.Is(err, export.ErrNotRegular) || !strings.Contains(err.Error(), tc.path+" is a "+tc.what) {
			t.Fatalf("err = %v, want it to say %s is a %s", err, tc.path, tc.what)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Error("the named pipe was replaced")
	}
}

// TestCLI_FrozenRecorder: a recorder whose control socket accepts but
// never answers is reported as holding the file without answering, not
// as a deadline.
func TestCLI_FrozenRecorder(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	simtest.WriteRecording(t, db)
	simtest.FrozenSocket(t, db+".sock")
	_, err := run(t, "info", "--db", db)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "does not answer on its control socket") ||
		!strings.Contains(err.Error(), "wattrec record") || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want the file in use by a recorder that does not answer, with the hint", err)
	}
}

// TestCheck: check says what it checked and exits 0 on a sound file; on
// a damaged one it lists the problems and fails, and the readers' error
// points to check and repair.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	simtest.WriteRecording(t, db)
	before := hashFile(t, db)
	out, err := run(t, "check", "--db", db)
	if err != nil || !strings.Contains(out, "sound") || !strings.Contains(out, "bbolt    its own consistency check passed") ||
		!strings.Contains(out, "41400 readings") {
		t.Fatalf("check on a sound file: %v\n%s", err, out)
	}
	if hashFile(t, db) != before {
		t.Error("check changed the file")
	}

	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.db")
	if err := os.WriteFile(cut, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "check", "--db", cut)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(out, "damaged") || !strings.Contains(out, "truncated") ||
		!strings.Contains(err.Error(), "wattrec repair --db FILE -o NEW") || strings.Contains(err.Error(), "wattrec check") {
		t.Fatalf("check on a truncated file: %v, want ErrCorrupt with the repair hint\n%s", err, out)
	}
	_, err = run(t, "info", "--db", cut)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "wattrec check --db FILE") || !strings.Contains(err.Error(), "wattrec repair --db FILE -o NEW") {
		t.Fatalf("info on a truncated file: %v, want ErrCorrupt with the hint", err)
	}

	fixed := filepath.Join(dir, "fixed.db")
	out, err = run(t, "repair", "--db", cut, "-o", fixed)
	if err != nil || !strings.Contains(out, "wrote    "+fixed) || !strings.Contains(out, "lost") {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	if out, err := run(t, "check", "--db", fixed); err != nil {
		t.Fatalf("check on the repaired file: %v\n%s", err, out)
	}
	if !bytes.Equal(b[:len(b)/3], mustRead(t, cut)) {
		t.Error("repair changed the damaged file")
	}
	if _, err := run(t, "repair", "--db", cut, "-o", fixed); !errors.Is(err, os.ErrExist) {
		t.Errorf("repair over an existing file: %v, want os.ErrExist", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
