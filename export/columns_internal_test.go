package export

import (
	"reflect"
	"strings"
	"testing"
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
