package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/store"
)

// damageCase is one damaged copy of a recording.
type damageCase struct {
	name string
	// harmless: the damage is past the pages bbolt uses (a truncation
	// in the file's slack), so every answer must be the pristine one.
	harmless  bool
	truncated bool
	damage    func([]byte) []byte
}

// pageLayout is where a bbolt file's pages of each type are.
type pageLayout struct {
	pageSize int
	hwm      int // pages in use or free
	types    map[string][]int
}

func layoutOf(t *testing.T, path string) pageLayout {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	l := pageLayout{pageSize: bdb.Info().PageSize, types: map[string][]int{}}
	err = bdb.View(func(tx *bolt.Tx) error {
		l.hwm = int(tx.Size()) / l.pageSize
		for id := 0; id < l.hwm; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p != nil {
				l.types[p.Type] = append(l.types[p.Type], id)
				id += p.OverflowCount
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// damageCases are truncations at pages of every kind and in the slack,
// and bit flips: 12 copies with 32 random bits flipped each, seeded.
func damageCases(t *testing.T, l pageLayout, size int) []damageCase {
	ps := l.pageSize
	end := l.hwm * ps
	at := map[string]int{
		"empty":                0,
		"mid-meta0":            100,
		"meta0-end":            ps,
		"mid-meta1":            ps + 100,
		"after-metas":          2 * ps,
		"mid-last-page":        end - ps/2,
		"last-byte-of-pages":   end - 1,
		"pages-end (harmless)": end,
		"slack (harmless)":     end + (size-end)/2,
		"last-byte (harmless)": size - 1,
	}
	pick := func(typ string, n int) {
		ids := l.types[typ]
		for i := range min(n, len(ids)) {
			id := ids[i*len(ids)/min(n, len(ids))]
			at[fmt.Sprintf("mid-%s-page-%d", typ, id)] = id*ps + ps/2
		}
	}
	pick("branch", 3)
	pick("leaf", 9)
	pick("freelist", 1)
	pick("free", 2)
	var cases []damageCase
	for name, off := range at {
		if off >= size {
			continue
		}
		cases = append(cases, damageCase{name: "truncate/" + name, harmless: off >= end, truncated: true,
			damage: func(b []byte) []byte { return b[:off] }})
	}
	slices.SortFunc(cases, func(a, b damageCase) int { return strings.Compare(a.name, b.name) })
	for seed := range uint64(12) {
		cases = append(cases, damageCase{name: fmt.Sprintf("flip/seed-%d", seed), damage: func(b []byte) []byte {
			rng := rand.New(rand.NewPCG(seed, 32))
			for range 32 {
				i := rng.IntN(len(b))
				b[i] ^= 1 << rng.IntN(8)
			}
			return b
		}})
	}
	return cases
}

// outcome is what one command did on a damaged file.
type outcome struct {
	out      string
	err      error
	panicked string // the panic and its stack, if it panicked
}

// safely runs fn and turns a panic into an outcome.
func safely(fn func() (string, error)) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o.panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	o.out, o.err = fn()
	return o
}

// readAll is everything the store API reads from the file at path, as
// text, or the first error.
func readAll(path string) (string, error) {
	ctx := context.Background()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var b strings.Builder
	runs, err := db.Runs(ctx)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "runs %+v\n", runs)
	marks, err := db.Marks(ctx, "")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "marks %+v\n", marks)
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return "", err
	}
	for _, ep := range eps {
		fmt.Fprintf(&b, "endpoint %+v\n", ep)
		ss, err := db.Sessions(ctx, ep.Endpoint)
		if err != nil {
			return "", err
		}
		cs, err := db.ClockEstimates(ctx, ep.Endpoint)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "sessions %+v\nclocks %+v\n", ss, cs)
	}
	counters, err := db.CounterSeries(ctx, "")
	if err != nil {
		return "", err
	}
	for _, cs := range counters {
		rs, err := db.Counters(ctx, cs.SeriesKey, cs.FirstMs, cs.LastMs+1)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "counters %+v %+v\n", cs, rs)
	}
	series, err := db.Series(ctx, "", true)
	if err != nil {
		return "", err
	}
	for _, s := range series {
		fmt.Fprintf(&b, "series %+v\n", s)
		err := db.Scan(ctx, s.SeriesKey, s.FirstMs, s.LastMs+1, func(r *store.Reading) error {
			fmt.Fprintf(&b, "%d %d %d %t\n", r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// decodableChunks is the readings of every chunk that store.ScanChunks
// can still read and decode in the file at path, by series.
func decodableChunks(path string) map[store.SeriesKey][]store.Reading {
	ctx := context.Background()
	out := map[store.SeriesKey][]store.Reading{}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return out
	}
	defer db.Close()
	series, _ := db.Series(ctx, "", false)
	for _, s := range series {
		db.ScanChunks(ctx, s.SeriesKey, -1<<63, 1<<63-1, func(ch *store.Chunk) error {
			var rs []store.Reading
			if ch.Readings(func(r *store.Reading) error { rs = append(rs, *r); return nil }) == nil {
				out[s.SeriesKey] = append(out[s.SeriesKey], rs...)
			}
			return nil
		})
	}
	return out
}

// TestDamagedFiles: truncations and bit flips of a real recording never
// make a command panic; the readers fail with store.ErrCorrupt where
// they meet the damage, check fails on every file a reader found
// damaged (and on every truncation inside the pages), and repair writes
// a file that checks and keeps every chunk a reader can still decode.
// bbolt places pages in map order, so the flips, though seeded, land on
// other pages in each run.
//
// A flip inside a record that still decodes (a digit of a count, a
// letter of a name) cannot be seen: bbolt keeps no page checksums. Such
// cases are logged, not failed, and counted in the last line.
func TestDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	simtest.WriteRecording(t, pristine)
	orig, err := os.ReadFile(pristine)
	if err != nil {
		t.Fatal(err)
	}
	layout := layoutOf(t, pristine)
	want, err := readAll(pristine)
	if err != nil {
		t.Fatal(err)
	}

	// The commands, each on its own copy of the file (mark add writes).
	// An export's answer is the file it writes; record fails at its
	// start (no zeusd listens) and must leave the file as it was.
	commands := []struct {
		name   string
		args   func(db, out string) []string
		output string // the file that holds the answer, beside db
		fails  bool
	}{
		{name: "info", args: func(db, _ string) []string { return []string{"info", "--db", db} }},
		{name: "query", args: func(db, _ string) []string { return []string{"query", "--db", db, "--by", "device"} }},
		{name: "query --window", args: func(db, _ string) []string { return []string{"query", "--db", db, "--window", "epoch"} }},
		{name: "export jsonl", args: func(db, out string) []string { return []string{"export", "--db", db, "-o", out} }, output: "out.jsonl"},
		{name: "export parquet", args: func(db, out string) []string { return []string{"export", "--db", db, "-o", out} }, output: "out.parquet"},
		{name: "mark list", args: func(db, _ string) []string { return []string{"mark", "list", "--db", db} }},
		{name: "mark add", args: func(db, _ string) []string {
			return []string{"mark", "add", "--db", db, "--from", "2026-11-28T16:01:00Z", "--to", "2026-11-28T16:02:00Z", "late"}
		}},
		{name: "record", args: func(db, _ string) []string {
			return []string{"record", "--db", db, "--server", "unix://" + filepath.Join(filepath.Dir(db), "none.sock"), "--log-level", "error"}
		}, fails: true},
	}
	// runCmd runs cmd on a copy of file in a directory of its own and
	// returns its outcome, the answer made comparable, and whether the
	// copy changed.
	runCmd := func(dir, name string, file []byte, args func(db, out string) []string, output string) (outcome, string, bool) {
		cd := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.Mkdir(cd, 0o700); err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(cd, "run.db")
		if err := os.WriteFile(db, file, 0o600); err != nil {
			t.Fatal(err)
		}
		o := safely(func() (string, error) { return run(t, args(db, filepath.Join(cd, output))...) })
		answer := o.out
		if output != "" && o.err == nil {
			b, err := os.ReadFile(filepath.Join(cd, output))
			if err != nil {
				t.Fatal(err)
			}
			answer = string(b)
		}
		after, err := os.ReadFile(db)
		return o, normalise(answer, cd), err != nil || !bytes.Equal(after, file)
	}
	wantOut := map[string]string{}
	for _, cmd := range commands {
		o, answer, _ := runCmd(t.TempDir(), cmd.name, orig, cmd.args, cmd.output)
		if o.err != nil && !cmd.fails || o.panicked != "" {
			t.Fatalf("%s on the pristine file: %v %s\n%s", cmd.name, o.err, o.panicked, o.out)
		}
		wantOut[cmd.name] = answer
	}

	cases := damageCases(t, layout, len(orig))
	var panics, silent, detected, sound int
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			damaged := tc.damage(bytes.Clone(orig))
			write := func(name string) string {
				p := filepath.Join(d, name)
				if err := os.WriteFile(p, damaged, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			src := write("src.db")

			// check, on a file of its own.
			chk := safely(func() (string, error) { return run(t, "check", "--db", write("check.db")) })
			if chk.panicked != "" {
				panics++
				t.Fatalf("check panicked: %s", chk.panicked)
			}
			damagedSays := chk.err != nil
			if damagedSays {
				detected++
				if !errors.Is(chk.err, store.ErrCorrupt) && !errors.Is(chk.err, store.ErrNotWattrec) {
					t.Errorf("check: %v, want an error matching store.ErrCorrupt", chk.err)
				}
			} else {
				sound++
			}
			switch {
			case tc.harmless && damagedSays:
				t.Errorf("check says a file damaged only past its pages is damaged: %v\n%s", chk.err, chk.out)
			case tc.truncated && !tc.harmless && !damagedSays:
				t.Errorf("check says a file truncated inside its pages is sound:\n%s", chk.out)
			}

			// The store API.
			got := safely(func() (string, error) { return readAll(src) })
			if got.panicked != "" {
				panics++
				t.Fatalf("store reads panicked: %s", got.panicked)
			}
			switch {
			case got.err != nil && !damagedSays:
				t.Errorf("the store fails (%v) on a file check says is sound", got.err)
			case got.err != nil && !errors.Is(got.err, store.ErrCorrupt) && !errors.Is(got.err, store.ErrNotWattrec):
				t.Errorf("store reads: %v, want an error matching store.ErrCorrupt", got.err)
			case got.err == nil && got.out != want && (tc.truncated || !damagedSays):
				silent++
				if tc.truncated {
					t.Errorf("the store reads other data from a truncated file without an error")
				} else {
					t.Logf("check says sound, the store reads other data: a bit flip inside a record (no checksum covers it)")
				}
			}

			// Every command.
			for _, cmd := range commands {
				o, answer, changed := runCmd(d, cmd.name, damaged, cmd.args, cmd.output)
				switch {
				case o.panicked != "":
					panics++
					t.Errorf("%s panicked: %s", cmd.name, o.panicked)
				case cmd.fails:
					if changed {
						t.Errorf("%s failed its start (%v) and changed the file", cmd.name, o.err)
					}
					if errors.Is(o.err, store.ErrCorrupt) && !damagedSays {
						t.Errorf("%s finds damage (%v) in a file check says is sound", cmd.name, o.err)
					}
				case o.err != nil && !damagedSays:
					t.Errorf("%s fails on a file check says is sound: %v", cmd.name, o.err)
				case o.err != nil && !errors.Is(o.err, store.ErrCorrupt) && !errors.Is(o.err, store.ErrNotWattrec):
					t.Errorf("%s: %v, want an error matching store.ErrCorrupt", cmd.name, o.err)
				case o.err == nil && tc.truncated && !tc.harmless:
					t.Errorf("%s succeeds on a truncated file:\n%s", cmd.name, o.out)
				case o.err == nil && answer != wantOut[cmd.name] && (tc.harmless || !damagedSays):
					silent++
					if tc.harmless {
						t.Errorf("%s answers otherwise on a file damaged only past its pages:\n%s", cmd.name, o.out)
					} else {
						t.Logf("%s answers otherwise on a file check says is sound: a bit flip inside a record", cmd.name)
					}
				}
			}

			// repair keeps every chunk a reader can still decode, in a
			// file that checks.
			fixed := filepath.Join(d, "fixed.db")
			rep := safely(func() (string, error) { return run(t, "repair", "--db", src, "-o", fixed) })
			switch {
			case rep.panicked != "":
				panics++
				t.Fatalf("repair panicked: %s", rep.panicked)
			case rep.err != nil && (tc.harmless || !errors.Is(rep.err, store.ErrCorrupt) && !errors.Is(rep.err, store.ErrNotWattrec)):
				t.Fatalf("repair: %v\n%s", rep.err, rep.out)
			case rep.err != nil:
				if _, err := os.Stat(fixed); err == nil {
					t.Errorf("repair failed (%v) but left %s", rep.err, fixed)
				}
				return
			}
			if r, err := store.CheckFile(context.Background(), fixed); err != nil {
				t.Fatalf("the repaired file does not check: %v\n%v", err, r.Problems)
			}
			repaired := decodableChunks(fixed)
			for k, rs := range decodableChunks(src) {
				if !contains(repaired[k], rs) {
					t.Errorf("repair lost readings of %s that a reader decodes (%d, repaired %d)\n%s\n%s", k, len(rs), len(repaired[k]), rep.out, chk.out)
				}
			}
			if tc.harmless || !damagedSays {
				if got, err := readAll(fixed); err != nil || got != want && tc.harmless {
					t.Errorf("repair of an undamaged file changed it (%v)", err)
				}
			}
			if tc.truncated {
				// Truncation cannot invent data: what repair keeps was
				// in the pristine file.
				pr := decodableChunks(pristine)
				for k, rs := range repaired {
					if !contains(pr[k], rs) {
						t.Errorf("repair of a truncated file invented readings of %s", k)
					}
				}
			}
		})
	}
	t.Logf("%d damaged files, each through %d commands, check, the store's reads and repair: %d panics; check found %d damaged and %d sound; %d answers differed without an error",
		len(cases), len(commands), panics, detected, sound, silent)
}

// normalise makes an output comparable across copies in other
// directories.
func normalise(out, dir string) string { return strings.ReplaceAll(out, dir, "DIR") }

// contains reports whether every reading of sub is in all.
func contains(all, sub []store.Reading) bool {
	have := map[store.Reading]int{}
	for _, r := range all {
		have[r]++
	}
	for _, r := range sub {
		if have[r] == 0 {
			return false
		}
		have[r]--
	}
	return true
}
