package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/store"
)

// killBatch returns batch i of the kill test's deterministic stream;
// call it for i = 0, 1, 2, ... in order on one generator.
func killBatch(g *streamGen, i int) store.Batch {
	var b store.Batch
	for range 200 + g.rng.IntN(800) {
		b.Readings = append(b.Readings, g.reading())
	}
	if i%5 == 4 { // late batches rewrite older chunks
		g.rng.Shuffle(len(b.Readings), func(i, j int) { b.Readings[i], b.Readings[j] = b.Readings[j], b.Readings[i] })
	}
	return b
}

// TestDB_Kill9 writes batches in a child process, kills it with SIGKILL
// at a random moment (often inside a commit), and checks that the file
// reopens, passes Check, holds exactly a prefix of the batches, at
// least those reported committed, and takes more batches. Three rounds on
// one file.
func TestDB_Kill9(t *testing.T) {
	if path := os.Getenv("WATTREC_KILL_CHILD"); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "w.db")
	next := 0 // batches stored so far
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDB_Kill9$")
		cmd.Env = append(os.Environ(), "WATTREC_KILL_CHILD="+path, "WATTREC_KILL_FROM="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		committed := next - 1
		stopAt := next + 10 + round*7
		for committed < stopAt && sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed ")); err == nil {
				committed = n
			}
		}
		<-time.After(time.Duration(round*3) * time.Millisecond) // land in different phases of a commit
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if committed < stopAt {
			t.Fatalf("round %d: child stopped after batch %d", round, committed)
		}

		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("round %d: check after kill -9: %v", round, err)
		}
		// The file holds batches [0, k] for some k >= committed: the
		// child may have committed more before the kill landed.
		g, m := newStreamGen(11), model{}
		n := countAll(t, db)
		for i := 0; ; i++ {
			for _, r := range killBatch(g, i).Readings {
				m.put(r)
			}
			if i >= committed && total(m) == n {
				next = i + 1
				break
			}
			if i > committed+1000 {
				t.Fatalf("round %d: %d readings stored, no prefix of the batches has that many", round, n)
			}
		}
		want := m
		t.Logf("round %d: batches 0..%d committed, the file holds 0..%d", round, committed, next-1)
		check(t, db, want)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func total(m model) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

func countAll(t *testing.T, db *store.DB) int {
	t.Helper()
	series, err := db.Series(context.Background(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range series {
		n += s.Readings
	}
	return n
}

// killChild writes batches from WATTREC_KILL_FROM on, reporting each
// commit, until it is killed.
func killChild(path string) {
	from, _ := strconv.Atoi(os.Getenv("WATTREC_KILL_FROM"))
	db, err := store.Open(path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	g := newStreamGen(11)
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		b := killBatch(g, i)
		if i < from {
			continue
		}
		if err := db.Write(context.Background(), &b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "committed %d\n", i)
		w.Flush()
	}
}
