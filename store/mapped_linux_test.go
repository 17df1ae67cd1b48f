package store

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mappedKB is the resident size of this process's mappings of path, from
// /proc/self/smaps, in kB.
func mappedKB(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var kb int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			kb += n
		}
	}
	return kb
}

// TestWrite_ReleasesMapped: pages a read mapped stay resident until the
// writer's next release, which gives back all but what that commit
// touches; every reading reads back the same afterwards.
func TestWrite_ReleasesMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapped.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const series, perCommit = 4, 20_000
	write := func(commit int) {
		b := &Batch{}
		for i := range perCommit {
			ms := int64(commit*perCommit + i)
			b.Readings = append(b.Readings, Reading{Endpoint: "n1:4938", Kind: KindGPU, Device: int32(i % series), TimeMs: ms, DaemonMs: ms, MilliWatts: 100_000 + ms*7919%50_000})
		}
		if err := db.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	sum := func() (n, mw int64) {
		for d := range series {
			err := db.Scan(ctx, SeriesKey{"n1:4938", KindGPU, int32(d)}, 0, 1<<62, func(r *Reading) error {
				n, mw = n+1, mw+r.MilliWatts
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return n, mw
	}
	commit := 0
	for ; db.commits%releaseMappedEvery != releaseMappedEvery-1; commit++ {
		write(commit)
	}
	n, mw := sum() // maps every page
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	read := mappedKB(t, path)
	if read < fi.Size()>>10/2 {
		t.Fatalf("after a full read %d kB of the %d kB file are mapped: the test does not map what it reads", read, fi.Size()>>10)
	}
	write(commit) // the commit that releases
	after := mappedKB(t, path)
	if after > read/3 {
		t.Errorf("after the release %d kB are mapped, %d kB before", after, read)
	}
	if n2, mw2 := sum(); n2 != n+perCommit || mw2 <= mw {
		t.Errorf("read back %d readings (sum %d mW), want %d (sum above %d)", n2, mw2, n+perCommit, mw)
	}
	t.Logf("file %d kB: mapped %d kB after a full read, %d kB after the release", fi.Size()>>10, read, after)
}
