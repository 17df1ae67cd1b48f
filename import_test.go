package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("wattrec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// queryJSON runs query --format json with args and returns its rows,
// without the counter columns when noCounters (a CSV or JSON Lines
// export carries no counter readings).
func queryJSON(t *testing.T, noCounters bool, args ...string) []map[string]any {
	t.Helper()
	var rep struct {
		Rows []map[string]any `json:"rows"`
	}
	out, _, err := runBoth(t, append([]string{"query", "--format", "json"}, args...)...) // warnings go to stderr
	if err != nil {
		t.Fatalf("query %q: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("query output: %v\n%s", err, out)
	}
	for _, r := range rep.Rows {
		for k := range r {
			// (nor clock estimates, whose round trips the bound counts)
			if noCounters && (strings.HasPrefix(k, "anchored") || strings.Contains(k, "counter") || k == "bridged_ms" || k == "uncovered_ms" || k == "joules_bound") {
				delete(r, k)
			}
		}
	}
	return rep.Rows
}

// noTempFiles fails t if dir holds a temp file of an atomic write.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

// TestImport_RoundTrip: export → import into a fresh file → export gives
// the same file, byte for byte, in every format, and the same query
// results: all of them from Parquet, which carries sessions and counter
// readings; energy, coverage and gaps from CSV and JSON Lines, whose
// sessions --max-gap finds again.
func TestImport_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.db")
	simtest.WriteRecording(t, rec)
	for _, tc := range []struct {
		format string
		flags  []string
	}{
		{export.FormatParquet, nil},
		{export.FormatCSV, []string{"--max-gap", "1s"}},
		{export.FormatJSONL, []string{"--max-gap", "1s"}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			first := filepath.Join(dir, "rec."+tc.format)
			mustRun(t, "export", "--db", rec, "-o", first)
			db := filepath.Join(dir, tc.format+".db")
			out := mustRun(t, append(append([]string{"import", "--db", db}, tc.flags...), first)...)
			if !strings.Contains(out, "41400 rows") || !strings.Contains(out, "(41400 readings)") {
				t.Errorf("import report:\n%s", out)
			}
			again := filepath.Join(dir, "again."+tc.format)
			mustRun(t, "export", "--db", db, "-o", again)
			if !bytes.Equal(mustRead(t, first), mustRead(t, again)) {
				t.Errorf("export → import → export changed the %s file", tc.format)
			}
			noCounters := tc.format != export.FormatParquet
			for _, by := range []string{"device", "total"} {
				want := queryJSON(t, noCounters, "--db", rec, "--by", by)
				if got := queryJSON(t, noCounters, "--db", db, "--by", by); !reflect.DeepEqual(got, want) {
					t.Errorf("query --by %s differs after the round trip:\ngot  %v\nwant %v", by, got, want)
				}
			}
			window := []string{"--from", "2026-11-28T16:01:00Z", "--to", "2026-11-28T16:03:30Z", "--every", "30s"}
			if got, want := queryJSON(t, noCounters, append([]string{"--db", db}, window...)...), queryJSON(t, noCounters, append([]string{"--db", rec}, window...)...); !reflect.DeepEqual(got, want) {
				t.Errorf("query of a window differs after the round trip")
			}
			if tc.format == export.FormatParquet {
				if got, want := mustRun(t, "mark", "list", "--db", db), mustRun(t, "mark", "list", "--db", rec); got != want {
					t.Errorf("marks after the round trip:\n%s\nwant:\n%s", got, want)
				}
			}
			noTempFiles(t, dir)
		})
	}
}

// writeFile writes text to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// genericCSV is a hand-made log in the import columns: one GPU at 1 Hz,
// 100 W from 0 s to 5 s, then silent until 10 s, 200 W to 14 s; one CPU
// package at 1 Hz, 50 W from 1 s to 5 s. Times mix RFC 3339 and Unix ms.
func genericCSV() string {
	var b strings.Builder
	b.WriteString("time,endpoint,kind,device,power_w\n")
	t0 := int64(simtest.RecordingStartMs)
	for s := int64(0); s <= 14; s++ {
		if s > 5 && s < 10 {
			continue
		}
		w := 100
		if s >= 10 {
			w = 200
		}
		if s%2 == 0 {
			fmt.Fprintf(&b, "%d,smi,gpu,0,%d\n", t0+s*1000, w)
		} else {
			fmt.Fprintf(&b, "2026-11-28T16:00:%02d.000Z,smi,gpu,0,%d.0\n", s, w)
		}
	}
	for s := int64(1); s <= 5; s++ {
		fmt.Fprintf(&b, "2026-11-28 17:00:%02d+01:00,smi,cpu,0,50\n", s)
	}
	return b.String()
}

// TestImport_Generic: a generic CSV with its observed span declared
// gives the joules, coverage and gaps of the rules, worked out by hand.
func TestImport_Generic(t *testing.T) {
	dir := t.TempDir()
	log := writeFile(t, dir, "smi.csv", genericCSV())
	for _, tc := range []struct {
		name  string
		flags []string
		// per device: joules, coverage, gaps
		gpu, cpu [3]float64
	}{
		// Sessions [0, 6 s) and [10, 15 s) (the GPU's 1 s period past
		// its last reading), the CPU's [1 s, 6 s): the GPU holds 100 W
		// for 6 s and 200 W for 5 s; the CPU's first value covers
		// (0 s, 1 s], before its session, the others 1 s each and the
		// last to the session's end. The window is [0, 15 s).
		{"MaxGap", []string{"--max-gap", "2s"}, [3]float64{1600, 11.0 / 15, 1}, [3]float64{250, 5.0 / 15, 2}},
		// One session [0, 20 s) for both streams: the GPU's 100 W holds
		// until the 200 W at 10 s, which holds to the end; the CPU's 50 W
		// covers (0, 1] and on to 20 s.
		{"Observed", []string{"--observed", "2026-11-28T16:00:00Z..2026-11-28T16:00:20Z"}, [3]float64{3000, 1, 0}, [3]float64{1000, 1, 0}},
		// start..end: from the first reading (0 s) to 1 ms past the
		// last (14 s).
		{"ObservedStartEnd", []string{"--observed", "start..end"}, [3]float64{100*10 + 200*4.001, 1, 0}, [3]float64{50 * 14.001, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(dir, tc.name+".db")
			out := mustRun(t, append(append([]string{"import", "--db", db}, tc.flags...), log)...)
			if !strings.Contains(out, "16 rows of smi") {
				t.Errorf("import report:\n%s", out)
			}
			rows := queryJSON(t, false, "--db", db)
			if len(rows) != 3 {
				t.Fatalf("query rows: %v", rows)
			}
			total := [3]float64{tc.gpu[0] + tc.cpu[0], -1, -1}
			for i, want := range [][3]float64{tc.gpu, tc.cpu, total} { // in kind order, then the total
				r := rows[i]
				got := [3]float64{r["joules"].(float64), r["coverage"].(float64), r["gaps"].(float64)}
				if math.Abs(got[0]-want[0]) > 1e-9 || want[1] >= 0 && (math.Abs(got[1]-want[1]) > 1e-9 || got[2] != want[2]) {
					t.Errorf("%s: joules, coverage, gaps = %v, want %v", r["group"], got, want)
				}
			}
		})
	}
}

// TestImport_Refuses: what cannot be imported is refused with an error
// that names the file, the line and the column or value, and the file
// imported into is left as it was (or not created).
func TestImport_Refuses(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.csv", genericCSV())
	const header = "time,endpoint,kind,device,power_w\n"
	existing := filepath.Join(dir, "existing.db")
	mustRun(t, "import", "--db", existing, "--max-gap", "2s", good)
	before := hashFile(t, existing)
	for _, tc := range []struct {
		name  string
		file  string // contents, or "" for good.csv
		flags []string
		want  []string
		is    error
	}{
		{"WrongColumn", "time,endpoint,kind,device,watts\n0,n,gpu,0,1\n", []string{"--max-gap", "2s"},
			[]string{":1: column 5 \"watts\" is not one of time, endpoint, kind, device, power_w", "wattrec import --help"}, export.ErrInput},
		{"BadTime", header + "2026-11-28T16:00:00Z,n,gpu,0,1\nyesterday,n,gpu,0,1\n", []string{"--max-gap", "2s"},
			[]string{`:3: column time: "yesterday": want RFC 3339 with a zone`}, export.ErrInput},
		{"UnknownKind", header + "0,n,gpu,0,1\n1000,n,npu,0,1\n", []string{"--max-gap", "2s"},
			[]string{`:3: column kind: unknown kind "npu" (want gpu, cpu or dram)`}, export.ErrInput},
		{"NoSessions", "", nil, []string{"no stream sessions: a csv file carries none", "--observed FROM..TO", "--max-gap"}, importer.ErrNoSessions},
		{"Outside", "", []string{"--observed", "2026-11-28T16:00:01Z..2026-11-28T16:00:20Z"},
			[]string{":2: a reading outside the observed span: 2026-11-28T16:00:00.000Z is before its start 2026-11-28T16:00:01.000Z", "widen it"}, importer.ErrOutside},
		{"Unordered", header + "2000,n,gpu,0,1\n1000,n,gpu,0,1\n", []string{"--max-gap", "2s"},
			[]string{":3: readings out of time order: n gpu:0 goes back", "sort the file"}, importer.ErrOrder},
		{"OverlapExisting", "", []string{"--max-gap", "2s"},
			[]string{"endpoint smi is in " + existing + " (2026-11-28T16:00:00.000Z to 2026-11-28T16:00:15.000Z) and in " + good}, importer.ErrOverlap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := good
			if tc.file != "" {
				file = writeFile(t, dir, tc.name+".csv", tc.file)
			}
			for _, db := range []string{filepath.Join(dir, tc.name+".db"), existing} {
				if tc.is == importer.ErrOverlap && db != existing {
					continue
				}
				_, err := run(t, append(append([]string{"import", "--db", db}, tc.flags...), file)...)
				if !errors.Is(err, tc.is) {
					t.Fatalf("err = %v, want %v", err, tc.is)
				}
				if !strings.Contains(err.Error(), file) {
					t.Errorf("err = %v, want it to name %s", err, file)
				}
				for _, want := range tc.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("err = %v, want it to say %q", err, want)
					}
				}
				if db != existing {
					if _, err := os.Stat(db); err == nil {
						t.Errorf("a refused import created %s", db)
					}
				}
			}
			if hashFile(t, existing) != before {
				t.Fatal("a refused import changed the existing file")
			}
			noTempFiles(t, dir)
		})
	}
	t.Run("OverlapFiles", func(t *testing.T) {
		_, err := run(t, "import", "--db", filepath.Join(dir, "two.db"), "--max-gap", "2s", good, good)
		if !errors.Is(err, importer.ErrOverlap) || !strings.Contains(err.Error(), "endpoint smi is in "+good) {
			t.Fatalf("err = %v, want the overlap of the file with itself", err)
		}
	})
	t.Run("BothDeclarations", func(t *testing.T) {
		_, err := run(t, "import", "--db", filepath.Join(dir, "both.db"), "--max-gap", "2s", "--observed", "start..end", good)
		if err == nil || !strings.Contains(err.Error(), "--observed and --max-gap: give one of them") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("BadObserved", func(t *testing.T) {
		for _, spec := range []string{"2026-11-28T16:00:00Z", "..end", "start..tomorrow"} {
			_, err := run(t, "import", "--db", filepath.Join(dir, "obs.db"), "--observed", spec, good)
			if err == nil || !strings.Contains(err.Error(), "--observed") {
				t.Errorf("--observed %q: err = %v", spec, err)
			}
		}
	})
	t.Run("Process", func(t *testing.T) {
		// As a user sees it: one line and its hint on stderr, exit 1,
		// never a stack trace.
		bad := writeFile(t, dir, "bad.csv", header+"0,n,gpu,0,1\n1,n,gpu,zero,1\n")
		stdout, stderr, code := runWattrec(t, nil, "import", "--db", filepath.Join(dir, "p.db"), "--max-gap", "1s", bad)
		want := "wattrec: import: " + bad + `:3: column device: "zero" is not a device index (0, 1, ...)` + "\n(import reads wattrec's raw exports"
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) || strings.Contains(stderr, "goroutine") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and stderr starting %q", code, stdout, stderr, want)
		}
	})
}

// TestImport_IntoExisting: importing into a recording keeps all of it
// (its marks with their ids) and adds the file's endpoint.
func TestImport_IntoExisting(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.db")
	simtest.WriteRecording(t, rec)
	want := queryJSON(t, false, "--db", rec, "--endpoint", "node1:4938")
	marks := mustRun(t, "mark", "list", "--db", rec)
	exp := filepath.Join(dir, "rec.csv")
	mustRun(t, "export", "--db", rec, "-o", exp)
	mustRun(t, "import", "--db", rec, "--max-gap", "2s", writeFile(t, dir, "smi.csv", genericCSV()))
	if got := queryJSON(t, false, "--db", rec, "--endpoint", "node1:4938"); !reflect.DeepEqual(got, want) {
		t.Errorf("the recording's query changed:\ngot  %v\nwant %v", got, want)
	}
	if got := mustRun(t, "mark", "list", "--db", rec); got != marks {
		t.Errorf("marks changed:\n%s\nwant:\n%s", got, marks)
	}
	rows := queryJSON(t, false, "--db", rec, "--endpoint", "smi")
	if len(rows) != 3 || rows[0]["joules"] != 1600.0 {
		t.Errorf("the imported endpoint: %v", rows)
	}
	// What was there exports as before.
	again := filepath.Join(dir, "again.csv")
	mustRun(t, "export", "--db", rec, "-o", again, "--endpoint", "node1:4938", "--endpoint", "/run/zeusd/zeusd.sock")
	if !bytes.Equal(mustRead(t, exp), mustRead(t, again)) {
		t.Error("the recording's rows changed")
	}
	// A new mark gets a new id.
	out := mustRun(t, "mark", "add", "--db", rec, "--from", "2026-11-28T16:00:00Z", "--to", "2026-11-28T16:00:10Z", "later")
	if !strings.HasPrefix(out, `mark 5 "later"`) {
		t.Errorf("mark add after the import: %s", out)
	}
}

// recordSim records a fast simulator into db for a moment with `wattrec
// run`, a mark with mark add, and returns the endpoint.
func recordSim(t *testing.T, db string, seed int64) string {
	t.Helper()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.Seed = seed
	_, srv, _ := simtest.Start(t, cfg, "tcp")
	mustRun(t, "run", "--db", db, "--server", srv.Address, "--counter-interval", "100ms", "--clock-interval", "200ms",
		"--log-level", "error", "--", "sh", "-c", "sleep 0.6")
	mustRun(t, "mark", "add", "--db", db, "--from", "-1h", "--to", "now", fmt.Sprintf("node %d", seed))
	return srv.Address
}

// TestMerge: two simulators recorded into two files and merged give, per
// endpoint, the query results and rows of the file it came from, with
// every session, clock estimate, counter reading, run and mark.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	eps := map[string]string{recordSim(t, a, 1): a, recordSim(t, b, 2): b}
	all := filepath.Join(dir, "all.db")
	hashes := [][32]byte{hashFile(t, a), hashFile(t, b)}
	out := mustRun(t, "merge", "-o", all, a, b)
	if !strings.Contains(out, "wrote    "+all+": 2 endpoints, 2 runs, 4 marks") {
		t.Errorf("merge report: %s", out)
	}
	if hashFile(t, a) != hashes[0] || hashFile(t, b) != hashes[1] {
		t.Error("merge changed an input")
	}
	noTempFiles(t, dir)
	for ep, src := range eps {
		for _, args := range [][]string{{"--by", "device"}, {"--by", "total"}, {"--window", fmt.Sprintf("node %d", map[string]int{a: 1, b: 2}[src])}} {
			want := queryJSON(t, false, append([]string{"--db", src, "--endpoint", ep}, args...)...)
			if got := queryJSON(t, false, append([]string{"--db", all, "--endpoint", ep}, args...)...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s query %v differs in the merge:\ngot  %v\nwant %v", ep, args, got, want)
			}
		}
		want := mustRun(t, "export", "--db", src, "--format", "csv")
		if got := mustRun(t, "export", "--db", all, "--format", "csv", "--endpoint", ep); got != want {
			t.Errorf("%s rows differ in the merge", ep)
		}
	}
	// Every record of both, through the store.
	ctx := context.Background()
	m := simtest.OpenStored(t, all)
	var wantMarks, wantRuns []string
	for ep, src := range eps {
		in := simtest.OpenStored(t, src)
		for _, get := range []func(*store.DB) (any, error){
			func(db *store.DB) (any, error) { return db.Sessions(ctx, ep) },
			func(db *store.DB) (any, error) { return db.ClockEstimates(ctx, ep) },
			func(db *store.DB) (any, error) { return db.CounterSeries(ctx, ep) },
			func(db *store.DB) (any, error) { return db.Series(ctx, ep, true) },
		} {
			got, err1 := get(m)
			want, err2 := get(in)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: merged %+v (%v), want %+v (%v)", ep, got, err1, want, err2)
			}
		}
		cs, _ := in.CounterSeries(ctx, ep)
		for _, c := range cs {
			got, _ := m.Counters(ctx, c.SeriesKey, math.MinInt64, math.MaxInt64)
			want, _ := in.Counters(ctx, c.SeriesKey, math.MinInt64, math.MaxInt64)
			if len(want) < 2 || !reflect.DeepEqual(got, want) {
				t.Errorf("%s counter readings: merged %d, want %d (at least 2)", c.SeriesKey, len(got), len(want))
			}
		}
		marks, _ := in.Marks(ctx, "")
		for _, mk := range marks {
			mk.ID = 0
			wantMarks = append(wantMarks, fmt.Sprintf("%+v", mk))
		}
		runs, _ := in.Runs(ctx)
		for _, r := range runs {
			wantRuns = append(wantRuns, fmt.Sprintf("%+v", r))
		}
	}
	var gotMarks, gotRuns []string
	marks, _ := m.Marks(ctx, "")
	ids := map[uint64]bool{}
	for _, mk := range marks {
		ids[mk.ID] = true
		mk.ID = 0
		gotMarks = append(gotMarks, fmt.Sprintf("%+v", mk))
	}
	runs, _ := m.Runs(ctx)
	for _, r := range runs {
		gotRuns = append(gotRuns, fmt.Sprintf("%+v", r))
	}
	slices.Sort(gotMarks)
	slices.Sort(wantMarks)
	slices.Sort(gotRuns)
	slices.Sort(wantRuns)
	if !reflect.DeepEqual(gotMarks, wantMarks) || len(ids) != len(marks) {
		t.Errorf("marks: merged %v (ids %v), want %v", gotMarks, ids, wantMarks)
	}
	if !reflect.DeepEqual(gotRuns, wantRuns) {
		t.Errorf("runs: merged %v, want %v", gotRuns, wantRuns)
	}
}

// TestMerge_Refuses: overlapping endpoints, an existing output, the
// output among the inputs and an input held by a recorder are refused
// before anything is written, and nothing is left behind.
func TestMerge_Refuses(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	simtest.WriteRecording(t, a)
	simtest.WriteRecording(t, b)
	out := filepath.Join(dir, "all.db")
	_, err := run(t, "merge", "-o", out, a, b)
	want := "endpoint /run/zeusd/zeusd.sock is in " + a + " (2026-11-28T16:00:00.000Z to 2026-11-28T16:05:00.000Z) and in " + b
	if !errors.Is(err, importer.ErrOverlap) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrOverlap saying %q", err, want)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused merge left its output")
	}
	noTempFiles(t, dir)

	if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "merge", "-o", out, a)
	if !errors.Is(err, export.ErrExists) || !strings.Contains(err.Error(), "use --force to replace it") {
		t.Fatalf("err = %v, want ErrExists with the hint", err)
	}
	if string(mustRead(t, out)) != "keep me" {
		t.Fatal("merge replaced the existing output without --force")
	}
	if _, err := run(t, "merge", "-o", out, "--force", a); err != nil {
		t.Fatalf("merge --force: %v", err)
	}
	if got, want := queryJSON(t, false, "--db", out), queryJSON(t, false, "--db", a); !reflect.DeepEqual(got, want) {
		t.Error("a merge of one file differs from it")
	}
	if _, err := run(t, "merge", "-o", a, "--force", a); err == nil || !strings.Contains(err.Error(), "is also an input") {
		t.Errorf("merge into an input: %v", err)
	}

	holder, err := store.Open(b, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	_, err = run(t, "merge", "-o", filepath.Join(dir, "locked.db"), b)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "is `wattrec record` running on this file?") {
		t.Errorf("merge of a held file: %v", err)
	}
	before := hashFile(t, b)
	if _, err = run(t, "merge", "-o", b, "--force", a); !errors.Is(err, store.ErrLocked) {
		t.Errorf("merge --force over a held file: %v, want ErrLocked", err)
	}
	if hashFile(t, b) != before {
		t.Error("merge --force replaced a held file")
	}
	noTempFiles(t, dir)
}
