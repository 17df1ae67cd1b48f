package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// parseCSV reads a CSV export back with encoding/csv and checks its
// header.
func parseCSV(tb testing.TB, data []byte, header string) [][]string {
	tb.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		tb.Fatalf("parse CSV: %v", err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != header {
		tb.Fatalf("header %v, want %s", recs[:min(len(recs), 1)], header)
	}
	return recs[1:]
}

func TestCSV(t *testing.T) {
	db := MustHandDB(t)
	for _, tc := range []struct {
		name string
		f    query.Filter
	}{
		{"All", query.Filter{}},
		{"Window", query.Filter{Range: query.Between(t0+12_345, t0+31_000), Endpoints: []string{epUnix}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := storeRows(t, db, tc.f)
			var buf bytes.Buffer
			n, err := export.CSV(context.Background(), &buf, db, tc.f, export.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(want)) {
				t.Errorf("CSV returned %d rows, want %d", n, len(want))
			}
			var got []row
			for i, rec := range parseCSV(t, buf.Bytes(), export.CSVHeader) {
				if len(rec) != 7 {
					t.Fatalf("record %d: %d fields", i, len(rec))
				}
				tm, err := time.Parse(time.RFC3339Nano, rec[0])
				if err != nil || !strings.HasSuffix(rec[0], "Z") {
					t.Fatalf("record %d: time %q: want RFC 3339 UTC (%v)", i, rec[0], err)
				}
				daemon, err1 := strconv.ParseInt(rec[1], 10, 64)
				dev, err2 := strconv.ParseInt(rec[4], 10, 32)
				power, err3 := strconv.ParseFloat(rec[5], 64)
				seed, err4 := strconv.ParseBool(rec[6])
				if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
					t.Fatalf("record %d: %v", i, rec)
				}
				got = append(got, row{tm.UnixMilli(), daemon, rec[2], rec[3], int32(dev), power, seed})
				if mw := math.Round(power * 1000); power != mw/1000 {
					t.Fatalf("record %d: power %q does not parse back to milliwatts / 1000", i, rec[5])
				}
			}
			diffRows(t, got, want)
		})
	}
	t.Run("Quoting", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := export.CSV(context.Background(), &buf, db, query.Filter{Endpoints: []string{epUnix}}, export.Options{}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), `,"/run/zeusd,""a"".sock",`) {
			t.Errorf("endpoint %q not quoted per RFC 4180:\n%s", epUnix, buf.String()[:300])
		}
	})
}

func TestGridCSV(t *testing.T) {
	db := MustHandDB(t)
	f := query.Filter{Range: query.Between(t0+17_250, t0+33_000)}
	bins := gridBins(t, db, f, 500)
	var buf bytes.Buffer
	n, err := export.GridCSV(context.Background(), &buf, db, f, 500, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := parseCSV(t, buf.Bytes(), export.GridCSVHeader)
	if n != int64(len(bins)) || len(recs) != len(bins) {
		t.Fatalf("%d records (returned %d), want %d", len(recs), n, len(bins))
	}
	for i, rec := range recs {
		b := bins[i]
		tm, err := time.Parse(time.RFC3339Nano, rec[0])
		if err != nil {
			t.Fatal(err)
		}
		binMs, _ := strconv.ParseInt(rec[1], 10, 64)
		dev, _ := strconv.ParseInt(rec[4], 10, 32)
		energy, _ := strconv.ParseFloat(rec[5], 64)
		coverage, _ := strconv.ParseFloat(rec[7], 64)
		samples, _ := strconv.Atoi(rec[8])
		avg, ok := b.AvgW()
		wantAvg := ""
		if ok {
			wantAvg = strconv.FormatFloat(avg, 'g', -1, 64)
		}
		if tm.UnixMilli() != b.FromMs || binMs != b.ToMs-b.FromMs || rec[2] != b.Series.Endpoint || rec[3] != b.Series.Kind.String() ||
			int32(dev) != b.Series.Device || energy != b.Joules() || rec[6] != wantAvg || coverage != b.Coverage() || samples != b.Samples {
			t.Errorf("record %d = %v, want %+v", i, rec, b)
		}
	}
}
