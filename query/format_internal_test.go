package query

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
)

// TestJSONRow_Cells holds the CSV cells to the JSON row's fields: one
// cell per field, in their order, each the field's value as JSON writes
// it (empty for null), over rows with every field set or null at random.
func TestJSONRow_Cells(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	typ := reflect.TypeFor[jsonRow]()
	for range 200 {
		var jr jsonRow
		v := reflect.ValueOf(&jr).Elem()
		for i := range typ.NumField() {
			f := v.Field(i)
			if f.Kind() == reflect.Pointer {
				if rng.IntN(2) == 0 {
					continue // null
				}
				f.Set(reflect.New(f.Type().Elem()))
				f = f.Elem()
			}
			switch f.Kind() {
			case reflect.String:
				f.SetString(fmt.Sprintf("s%d, \"x\"", rng.IntN(100)))
			case reflect.Float64:
				f.SetFloat(rng.NormFloat64() * 1e6)
			default:
				f.SetInt(rng.Int64N(1<<40) - 1<<39)
			}
		}
		cells := jr.cells(nil)
		if len(cells) != typ.NumField() || len(cells) != len(ReportColumns()) {
			t.Fatalf("%d cells for %d fields", len(cells), typ.NumField())
		}
		for i, cell := range cells {
			f := v.Field(i)
			want := ""
			if f.Kind() != reflect.Pointer || !f.IsNil() {
				if f.Kind() == reflect.Pointer {
					f = f.Elem()
				}
				switch f.Kind() {
				case reflect.String:
					want = f.String()
				case reflect.Float64:
					want = strconv.FormatFloat(f.Float(), 'f', -1, 64)
				default:
					want = strconv.FormatInt(f.Int(), 10)
				}
			}
			if cell != want {
				t.Fatalf("cell %d (%s) = %q, want %q", i, typ.Field(i).Tag.Get("json"), cell, want)
			}
		}
	}
}
