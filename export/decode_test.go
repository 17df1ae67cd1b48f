package export_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// readRaw reads every row of the file at path back with OpenRaw.
func readRaw(tb testing.TB, path string) (*export.RawFile, []row) {
	tb.Helper()
	rf, err := export.OpenRaw(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer rf.Close()
	var out []row
	var r store.Reading
	for {
		err := rf.Next(&r)
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, row{r.TimeMs, r.DaemonMs, r.Endpoint, r.Kind.String(), r.Device, float64(r.MilliWatts) / 1000, r.Seed})
	}
	if done, total := rf.Progress(); done != int64(len(out)) || total != done {
		tb.Errorf("progress at the end = %d/%d, want %d/%d", done, total, len(out), len(out))
	}
	return rf, out
}

// TestOpenRaw_RoundTrip: every format of the raw export reads back as
// the rows the store holds, the format told by the content; Parquet's
// metadata brings back the sessions, clock estimates, endpoint info,
// counter readings and marks of the export.
func TestOpenRaw_RoundTrip(t *testing.T) {
	db := MustHandDB(t)
	ctx := context.Background()
	marks := []store.Mark{{Name: "warmup", BeginMs: t0, EndMs: t0 + 5000, CreatedMs: t0 + 5000, Source: "cli"}, {Name: "eval", BeginMs: t0 + 50_000, Open: true, CreatedMs: t0 + 50_000}}
	counters := []store.CounterReading{{Endpoint: epTCP, Kind: store.KindGPU, Device: 1, TakenMs: t0 + 100, RTTUs: 300, EnergyUJ: 5_000_000, Trigger: store.TriggerStart},
		{Endpoint: epTCP, Kind: store.KindGPU, Device: 1, TakenMs: t0 + 10_100, RTTUs: 310, EnergyUJ: 6_000_000, Trigger: store.TriggerPeriodic}}
	if err := db.Write(ctx, &store.Batch{Marks: marks, Counters: counters}); err != nil {
		t.Fatal(err)
	}
	want := storeRows(t, db, query.Filter{})
	dir := t.TempDir()
	for _, format := range export.Formats {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(dir, "run.data") // no telling extension
			err := export.WriteFile(path, true, func(w io.Writer) error {
				return export.Write(ctx, w, db, export.Request{Format: format})
			})
			if err != nil {
				t.Fatal(err)
			}
			rf, got := readRaw(t, path)
			if rf.Format != format {
				t.Errorf("format = %s, want %s", rf.Format, format)
			}
			diffRows(t, got, want)
			if format != export.FormatParquet {
				if rf.Meta != nil {
					t.Errorf("%s carries metadata %+v", format, rf.Meta)
				}
				return
			}
			m := rf.Meta
			if m == nil {
				t.Fatal("no metadata")
			}
			if m.Range != query.All || len(m.Thinned) != 0 {
				t.Errorf("range %v, thinned %v: want all, none", m.Range, m.Thinned)
			}
			for _, ep := range []string{epTCP, epUnix} {
				ss, _ := db.Sessions(ctx, ep)
				cs, _ := db.ClockEstimates(ctx, ep)
				if got := filterEP(m.Sessions, ep, func(s store.Session) string { return s.Endpoint }); !reflect.DeepEqual(got, ss) {
					t.Errorf("%s sessions = %+v, want %+v", ep, got, ss)
				}
				if got := filterEP(m.Clocks, ep, func(c store.ClockEstimate) string { return c.Endpoint }); !reflect.DeepEqual(got, cs) {
					t.Errorf("%s clock estimates = %+v, want %+v", ep, got, cs)
				}
			}
			infos, _ := db.Endpoints(ctx)
			if !reflect.DeepEqual(m.Endpoints, infos) {
				t.Errorf("endpoints = %+v, want %+v", m.Endpoints, infos)
			}
			if !reflect.DeepEqual(m.Counters, counters) {
				t.Errorf("counters = %+v, want %+v", m.Counters, counters)
			}
			stored, _ := db.Marks(ctx, "")
			if !reflect.DeepEqual(m.Marks, stored) {
				t.Errorf("marks = %+v, want %+v", m.Marks, stored)
			}
		})
	}
}

func filterEP[T any](list []T, ep string, of func(T) string) []T {
	var out []T
	for _, x := range list {
		if of(x) == ep {
			out = append(out, x)
		}
	}
	return out
}

// TestOpenRaw_Generic: a CSV with the import columns in any order, the
// optional ones left out, times as RFC 3339 (any zone, a space for the
// T) or Unix ms, and JSON Lines the same.
func TestOpenRaw_Generic(t *testing.T) {
	dir := t.TempDir()
	want := []row{
		{1_795_881_600_000, 1_795_881_600_000, "node1", "gpu", 0, 100, false},
		{1_795_881_600_250, 1_795_881_600_250, "node1", "gpu", 1, 75.5, false},
		{1_795_881_601_000, 1_795_881_601_000, "node,2", "cpu", 0, 40.125, false},
		{1_795_881_601_999, 1_795_881_601_999, "node,2", "dram", 0, 9, false},
	}
	for name, text := range map[string]string{
		"csv": "\ufeffendpoint, kind, device, power_w, time\n" +
			"node1, gpu, 0, 100, 2026-11-28T16:00:00Z\n" +
			"node1,gpu,1,75.5,2026-11-28T17:00:00.250+01:00\n" +
			"\"node,2\",cpu,0,40.125,1795881601000\n" +
			"\"node,2\",dram,0,9.0,2026-11-28 16:00:01.999999Z\n",
		"jsonl": `{"endpoint":"node1","kind":"gpu","device":0,"power_w":100,"time":"2026-11-28T16:00:00Z"}` + "\n\n" +
			`{"endpoint":"node1","kind":"gpu","device":"1","power_w":75.5,"time":"2026-11-28T17:00:00.250+01:00"}` + "\n" +
			`{"endpoint":"node\u002c2","kind":"cpu","device":0,"power_w":40.125,"time":1795881601000}` + "\n" +
			`{"endpoint":"node,2","kind":"dram","device":0,"power_w":9.0,"time":"2026-11-28 16:00:01.999999Z"}` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "log."+name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, got := readRaw(t, path)
			diffRows(t, got, want)
		})
	}
}

// TestOpenRaw_Refuses: what is not the raw table is ErrInput, with a
// message that names the file, the line and the column or value.
func TestOpenRaw_Refuses(t *testing.T) {
	dir := t.TempDir()
	const header = "time,endpoint,kind,device,power_w\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"Empty", "", "is empty"},
		{"WrongColumn", "time,endpoint,kind,device,powr_w\n", `:1: column 5 "powr_w" is not one of time, endpoint, kind, device, power_w and optionally daemon_time_ms, seed`},
		{"MissingColumn", "time,endpoint,kind,device\n", `:1: no column "power_w"`},
		{"TwiceColumn", "time,endpoint,kind,device,power_w,kind\n", `column "kind" appears twice`},
		{"Grid", export.GridCSVHeader + "\n", "is an energy grid export"},
		{"BadTime", header + "2026-11-28T16:00:00Z,n,gpu,0,1\n2026-11-28T16:00:00,n,gpu,0,1\n", `:3: column time: "2026-11-28T16:00:00": want RFC 3339 with a zone`},
		{"UnknownKind", header + "0,n,gpu,0,1\n1,n,tpu,0,1\n", `:3: column kind: unknown kind "tpu" (want gpu, cpu or dram)`},
		{"BadDevice", header + "0,n,gpu,-1,1\n", `:2: column device: "-1" is not a device index`},
		{"NegativePower", header + "0,n,gpu,0,-3\n", `:2: column power_w: -3 W: want a number of watts from 0`},
		{"NaNPower", header + "0,n,gpu,0,NaN\n", `:2: column power_w: NaN W`},
		{"BadPower", header + "0,n,gpu,0,lots\n", `:2: column power_w: "lots" is not a number of watts`},
		{"EmptyEndpoint", header + "0,,gpu,0,1\n", `:2: column endpoint: "": want a name`},
		{"FieldCount", header + "0,n,gpu,0\n", `:2: wrong number of fields`},
		{"BadSeed", "time,endpoint,kind,device,power_w,seed\n0,n,gpu,0,1,maybe\n", `:2: column seed: "maybe": want true or false`},
		{"JSONUnknownKey", `{"time":0,"endpoint":"n","kind":"gpu","device":0,"power_w":1,"watts":1}` + "\n", `.jsonl:1: key "watts" is not one of`},
		{"JSONMissingKey", `{"time":0,"endpoint":"n","kind":"gpu","device":0}` + "\n", `.jsonl:1: no key "power_w"`},
		{"JSONBadTime", `{"time":0,"endpoint":"n","kind":"gpu","device":0,"power_w":1}` + "\n" + `{"time":"yesterday","endpoint":"n","kind":"gpu","device":0,"power_w":1}` + "\n", `.jsonl:2: key time: "yesterday"`},
		{"JSONNotObject", `{"time":0,` + "\n", `.jsonl:1: not a JSON object`},
		{"ParquetDamaged", "PAR1 and then nothing", "not a readable Parquet file"},
		{"LongLine", header + "0,n,gpu,0,1\n" + strings.Repeat("x", 2<<20), ":3: a line longer than 1048576 bytes"},
		{"JSONLongLine", strings.Repeat(" ", 2<<20) + "{}", ":1: a line longer than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ext := ".csv"
			if strings.HasPrefix(tc.name, "JSON") {
				ext = ".jsonl"
			}
			path := filepath.Join(dir, tc.name+ext)
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			err := readAll(path)
			if !errors.Is(err, export.ErrInput) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInput naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

func readAll(path string) error {
	rf, err := export.OpenRaw(path)
	if err != nil {
		return err
	}
	defer rf.Close()
	var r store.Reading
	for {
		if err := rf.Next(&r); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// FuzzOpenRaw: any file reads back as rows or fails with ErrInput,
// never a panic.
func FuzzOpenRaw(f *testing.F) {
	for _, s := range []string{
		"time,endpoint,kind,device,power_w\n0,n,gpu,0,1\n",
		export.CSVHeader + "\n2026-11-28T16:00:00.000Z,1,n,cpu,0,1.5,true\n",
		`{"time":0,"endpoint":"n","kind":"gpu","device":0,"power_w":1}` + "\n",
		"PAR1", "\ufeff\n\n{", `"a,b`,
	} {
		f.Add([]byte(s))
	}
	var pq bytes.Buffer
	if err := export.Write(context.Background(), &pq, MustHandDB(f), export.Request{Format: export.FormatParquet,
		Filter: query.Filter{Range: query.Between(t0, t0+2000)}}); err != nil {
		f.Fatal(err)
	}
	f.Add(pq.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := readAll(path); err != nil && !errors.Is(err, export.ErrInput) {
			t.Fatalf("%q: %v, want nil or ErrInput", data, err)
		}
	})
}
