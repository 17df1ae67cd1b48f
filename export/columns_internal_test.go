package export

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/query"
)

// TestRawColumns_ParquetSchema holds Parquet's row struct to the one
// column list: the same names in the same order.
func TestRawColumns_ParquetSchema(t *testing.T) {
	typ := reflect.TypeFor[readingRow]()
	if got, want := typ.NumField(), len(rawColumns); got != want {
		t.Fatalf("readingRow has %d fields, rawColumns %d", got, want)
	}
	for i, c := range rawColumns {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("parquet"), ",")
		if name != c.name {
			t.Errorf("readingRow field %d is %q, rawColumns has %q", i, name, c.name)
		}
		if c.desc == "" {
			t.Errorf("column %q has no description", c.name)
		}
	}
	if got := CSVHeader; got != "time,daemon_time_ms,endpoint,kind,device,power_w,seed" {
		t.Errorf("CSVHeader = %q", got)
	}
}

// TestLineEncoder_AppendTime: the minute cache formats every time as
// query.FormatTime does, in and out of order, before 1970 too.
func TestLineEncoder_AppendTime(t *testing.T) {
	var e lineEncoder
	rng := rand.New(rand.NewPCG(1, 2))
	times := []int64{0, -1, -60_000, -60_001, 59_999, 60_000, 1_795_881_600_000, 1_795_881_659_999, 1_795_881_660_000}
	for range 2000 {
		times = append(times, 1_795_881_600_000+rng.Int64N(10*60_000)-5*60_000, -rng.Int64N(1e12))
	}
	for _, ms := range times {
		if got, want := string(e.appendTime(nil, ms)), query.FormatTime(ms); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	}
}
