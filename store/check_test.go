package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/store"
)

// recording writes simtest's recording to a new file and returns its path
// and bytes.
func recording(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.db")
	simtest.WriteRecording(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// openRecording opens simtest's recording read-only, until the test ends.
func openRecording(t *testing.T) *store.DB {
	t.Helper()
	path, _ := recording(t)
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// damaged writes b to a new file.
func damaged(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen_Damaged(t *testing.T) {
	_, orig := recording(t)
	for _, tc := range []struct {
		name    string
		file    []byte
		opt     store.Options
		want    error
		message string
	}{
		{"EmptyReadOnly", nil, store.Options{ReadOnly: true}, store.ErrNotWattrec, "the file is empty"},
		{"EmptyMustExist", nil, store.Options{MustExist: true}, store.ErrNotWattrec, "the file is empty"},
		{"NotBbolt", []byte(strings.Repeat("not a database\n", 1000)), store.Options{ReadOnly: true}, store.ErrNotWattrec, "no bbolt header"},
		{"MidMeta", orig[:100], store.Options{ReadOnly: true}, store.ErrCorrupt, "truncated: the file is 100 bytes"},
		{"BothMetas", append(make([]byte, 2*4096), orig[2*4096:]...), store.Options{ReadOnly: true}, store.ErrCorrupt, "no valid meta page"},
		{"Truncated", orig[:len(orig)/4], store.Options{ReadOnly: true}, store.ErrCorrupt, "truncated: the file is"},
		{"TruncatedWritable", orig[:len(orig)/4], store.Options{}, store.ErrCorrupt, "truncated: the file is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := damaged(t, tc.file)
			_, err := store.Open(path, tc.opt)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want %v saying %q and naming the file", err, tc.want, tc.message)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, tc.file) {
				t.Error("a refused Open changed the file")
			}
		})
	}
	t.Run("MustExistMissing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "typo.db")
		if _, err := store.Open(path, store.Options{MustExist: true}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("Open with MustExist created the file")
		}
	})
	t.Run("EmptyPath", func(t *testing.T) {
		if _, err := store.Open("", store.Options{}); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("err = %v, want one saying the path is empty", err)
		}
	})
	t.Run("WritableLeavesFileAsItWas", func(t *testing.T) {
		path := damaged(t, orig)
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, orig) {
			t.Error("opening and closing a file for writing changed it")
		}
	})
	t.Run("RefusesDamagedPages", func(t *testing.T) {
		// A leaf page's element count, damaged: bbolt would read past
		// the page, a write could spread the damage. Open refuses
		// before either.
		b := bytes.Clone(orig)
		leaf := leafPage(t, b)
		b[leaf*4096+10] ^= 0x40
		path := damaged(t, b)
		for _, ro := range []bool{false, true} {
			_, err := store.Open(path, store.Options{ReadOnly: ro})
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "problems with bbolt's pages") {
				t.Fatalf("read-only %v: err = %v, want ErrCorrupt about the pages", ro, err)
			}
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
			t.Error("a refused Open changed the file")
		}
	})
}

// leafPage returns the id of a leaf page of a chunk bucket in the bbolt
// file b (4 KiB pages): one whose first key is 8 bytes.
func leafPage(t *testing.T, b []byte) int {
	t.Helper()
	for id := 2; (id+1)*4096 <= len(b); id++ {
		p := b[id*4096:]
		if p[8] == 0x02 && p[10] > 0 && p[16+8] == 8 { // leaf flag, count > 0, first key size 8
			return id
		}
	}
	t.Fatal("no leaf page of chunks")
	return 0
}

// TestDB_FaultIsErrCorrupt: a file truncated while open (bbolt has it
// mapped, reading a page past its end faults) fails reads with
// ErrCorrupt instead of killing the process with SIGBUS.
func TestDB_FaultIsErrCorrupt(t *testing.T) {
	db := openRecording(t)
	if err := os.Truncate(db.Path(), 3*4096); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := store.SeriesKey{Endpoint: "node1:4938", Kind: store.KindGPU, Device: 2}
	err := db.Scan(ctx, k, 0, 1<<62, func(*store.Reading) error { return nil })
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("Scan: %v, want ErrCorrupt for a memory fault", err)
	}
	if _, err := db.Series(ctx, "", true); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Series: %v, want ErrCorrupt", err)
	}
}

// TestDB_ScanCallerPanics: a panic in Scan's fn is the caller's, not the
// file's: it goes on as it is.
func TestDB_ScanCallerPanics(t *testing.T) {
	db := openRecording(t)
	k := store.SeriesKey{Endpoint: "node1:4938", Kind: store.KindGPU, Device: 0}
	for name, scan := range map[string]func() error{
		"Scan": func() error {
			return db.Scan(context.Background(), k, 0, 1<<62, func(*store.Reading) error { panic("caller bug") })
		},
		"ChunkReadings": func() error {
			return db.ScanChunks(context.Background(), k, 0, 1<<62, func(c *store.Chunk) error {
				return c.Readings(func(*store.Reading) error { panic("caller bug") })
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != "caller bug" {
					t.Fatalf("recovered %v, want the caller's panic", r)
				}
			}()
			err := scan()
			t.Fatalf("returned %v, want the caller's panic", err)
		})
	}
}

func TestCheckFile(t *testing.T) {
	ctx := context.Background()
	path, orig := recording(t)
	t.Run("Sound", func(t *testing.T) {
		rep, err := store.CheckFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Counts{Endpoints: 2, Runs: 2, Marks: 4, Sessions: 6, Clocks: 6, Counters: 240, Series: 8, Readings: 41400}
		rep.Records.Chunks = 0 // depends on the encoder
		if rep.Records != want || !rep.BoltChecked || rep.LeafPages == 0 || rep.BranchPages == 0 {
			t.Fatalf("report %+v, want records %+v and bbolt's check run", rep, want)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		rep, err := store.CheckFile(ctx, damaged(t, orig[:len(orig)/4]))
		if !errors.Is(err, store.ErrCorrupt) || len(rep.Problems) == 0 || len(rep.Losses) == 0 || rep.BoltChecked {
			t.Fatalf("err = %v, report %+v: want ErrCorrupt with the losses, without bbolt's check", err, rep)
		}
		if !strings.Contains(rep.Problems[0].Error(), "truncated") {
			t.Errorf("the first problem is %v, want the truncation", rep.Problems[0])
		}
	})
	t.Run("ChunkSums", func(t *testing.T) {
		// A chunk's hold sum, off by one: the readings decode, the sums
		// say otherwise.
		b := bytes.Clone(orig)
		p := leafPage(t, b) * 4096
		elem := p + 16
		pos := int(uint32(b[elem+4]) | uint32(b[elem+5])<<8)
		v := elem + pos + 8 // the value, after the 8-byte key
		if b[v] != 0x02 || b[v+1]&4 == 0 {
			t.Skip("the first chunk of the page has no sums")
		}
		i := v + 2
		for range 7 { // n, span, d0, firstMW, lastMW, unit, mode: skip the varints
			for b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		b[i+2] ^= 1 // kt, kv, then the hold sum's first byte
		rep, err := store.CheckFile(ctx, damaged(t, b))
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(errors.Join(rep.Problems...).Error(), "sums") {
			t.Fatalf("err = %v, problems %v: want one about the sums", err, rep.Problems)
		}
	})
	t.Run("NotWattrec", func(t *testing.T) {
		_, err := store.CheckFile(ctx, damaged(t, bytes.Repeat([]byte{'x'}, 10000)))
		if !errors.Is(err, store.ErrNotWattrec) {
			t.Fatalf("err = %v, want ErrNotWattrec", err)
		}
	})
}

func TestRepair(t *testing.T) {
	ctx := context.Background()
	path, orig := recording(t)
	t.Run("SoundFileCopiesEverything", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "copy.db")
		rep, err := store.Repair(ctx, path, dst)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := store.CheckFile(ctx, path)
		if len(rep.Lost) != 0 || rep.Copied.Readings != src.Records.Readings || rep.Copied.Marks != 4 || rep.Copied.Counters != 240 {
			t.Fatalf("report %+v, want all of %+v", rep, src.Records)
		}
		got, err := store.CheckFile(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		got.Records.Chunks, src.Records.Chunks = 0, 0
		if got.Records != src.Records {
			t.Errorf("the copy holds %+v, want %+v", got.Records, src.Records)
		}
		// The marks keep their ids, and the next one gets a new id.
		db, err := store.Open(dst, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		m, err := db.AddMark(ctx, "after", "test", 1, 2, 3)
		if err != nil || m.ID != 5 {
			t.Errorf("new mark %+v (%v), want id 5", m, err)
		}
	})
	t.Run("DamagedLeaf", func(t *testing.T) {
		// One leaf page of chunks, zeroed: its chunks are lost, with
		// their series and times; everything else is copied.
		b := bytes.Clone(orig)
		p := leafPage(t, b)
		clear(b[p*4096 : (p+1)*4096])
		dst := filepath.Join(t.TempDir(), "fixed.db")
		rep, err := store.Repair(ctx, damaged(t, b), dst)
		if err != nil {
			t.Fatal(err)
		}
		// The keys are the page's times, or "all" when it was the
		// series' only page.
		if len(rep.Lost) != 1 || !strings.HasPrefix(rep.Lost[0].Where, "series ") || rep.Lost[0].Keys == "" ||
			!strings.Contains(rep.Lost[0].Keys, "2026-11-28T16:") && rep.Lost[0].Keys != "all" || !errors.Is(rep.Lost[0].Err, store.ErrCorrupt) {
			t.Fatalf("lost %v, want one series' page with its times", rep.Lost)
		}
		if rep.Copied.Readings == 0 || rep.Copied.Readings >= 41400 || rep.Copied.Sessions != 6 || rep.Copied.Marks != 4 {
			t.Errorf("copied %+v, want everything but that page", rep.Copied)
		}
		if _, err := store.CheckFile(ctx, dst); err != nil {
			t.Errorf("the repaired file: %v", err)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "fixed.db")
		rep, err := store.Repair(ctx, damaged(t, orig[:len(orig)/4]), dst)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Lost) == 0 {
			t.Fatalf("report %+v: want losses", rep)
		}
		for _, l := range rep.Lost {
			if !errors.Is(l.Err, store.ErrCorrupt) || l.Where == "" || l.Keys == "" {
				t.Errorf("loss %+v: want where, which keys, and an ErrCorrupt", l)
			}
		}
		if _, err := store.CheckFile(ctx, dst); err != nil {
			t.Errorf("the repaired file: %v", err)
		}
	})
	t.Run("NeverOverwrites", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "exists.db")
		if err := os.WriteFile(dst, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Repair(ctx, path, dst); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("err = %v, want fs.ErrExist", err)
		}
		if b, _ := os.ReadFile(dst); string(b) != "keep" {
			t.Error("Repair replaced an existing file")
		}
		if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*tmp*")); len(tmps) != 0 {
			t.Errorf("left %v", tmps)
		}
	})
}
