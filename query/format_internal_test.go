package query

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
)

// TestJSONRow_CSV holds a CSV line to the JSON row's fields: one cell
// per field, in their order, each the field's value as JSON writes it
// (empty for null), in the bytes encoding/csv writes, over rows with
// every field set or null at random and strings that need quoting.
func TestJSONRow_CSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	typ := reflect.TypeFor[jsonRow]()
	strs := []string{"n1:4938 gpu:0", "", " lead", "a,b", `say "x"`, "two\nlines", "cr\rx", `\.`, "ünï"}
	var line []byte
	for range 500 {
		var jr jsonRow
		v := randomRow(rng, &jr, strs, randomNumber)
		var want []string
		for i := range typ.NumField() {
			f, cell := v.Field(i), ""
			if f.Kind() != reflect.Pointer || !f.IsNil() {
				if f.Kind() == reflect.Pointer {
					f = f.Elem()
				}
				switch f.Kind() {
				case reflect.String:
					cell = f.String()
				case reflect.Float64:
					cell = strconv.FormatFloat(f.Float(), 'f', -1, 64)
				default:
					cell = strconv.FormatInt(f.Int(), 10)
				}
			}
			want = append(want, cell)
		}
		var buf bytes.Buffer
		cw := csv.NewWriter(&buf)
		cw.Write(want)
		cw.Flush()
		line = jr.appendCSV(line[:0])
		if string(line) != buf.String() {
			t.Fatalf("CSV line\n%q\nwant (encoding/csv)\n%q", line, buf.String())
		}
		if len(want) != len(ReportColumns()) {
			t.Fatalf("%d fields, %d columns", len(want), len(ReportColumns()))
		}
	}
	var hdr bytes.Buffer
	cw := csv.NewWriter(&hdr)
	cw.Write(rowKeys)
	cw.Flush()
	if got := appendCSVHeader(nil); string(got) != hdr.String() {
		t.Errorf("header %q, want %q", got, hdr.String())
	}
}

// randomRow sets every field of jr at random, a pointer to null half the
// time, strings from strs and floats from number, and returns jr as a
// reflect.Value.
func randomRow(rng *rand.Rand, jr *jsonRow, strs []string, number func(*rand.Rand) float64) reflect.Value {
	v := reflect.ValueOf(jr).Elem()
	for i := range v.NumField() {
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
			f.SetString(strs[rng.IntN(len(strs))])
		case reflect.Float64:
			f.SetFloat(number(rng))
		default:
			f.SetInt(rng.Int64N(1<<40) - 1<<39)
		}
	}
	return v
}

// randomNumber is a float as a row holds them: whole µJ or mW mostly,
// some arbitrary, some at the edges of appendFloat's integer path.
func randomNumber(rng *rand.Rand) float64 {
	switch rng.IntN(6) {
	case 0:
		return float64(rng.Int64N(2e15)-1e15) / 1e6 // whole µJ, past the integer path's reach
	case 1:
		return float64(rng.Int64N(1e9)) / 1e3 // whole mW
	case 2:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
	case 3:
		edges := []float64{0, math.Copysign(0, -1), 1e-6, -1e-6, 0.5e-6, 999999999.999999, 1e9, -1e9 + 1e-6, 1e-7, 123.1, 0.1 + 0.2}
		return edges[rng.IntN(len(edges))]
	case 4:
		return float64(rng.Int64N(1e6)) / 1e6 // a coverage-like fraction
	default:
		return rng.Float64()
	}
}

// TestAppendFloat: appendFloat writes what strconv.FormatFloat(v, 'f',
// -1, 64) writes, over a million numbers.
func TestAppendFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var b []byte
	for range 1_000_000 {
		v := randomNumber(rng)
		b = appendFloat(b[:0], v)
		if want := strconv.FormatFloat(v, 'f', -1, 64); string(b) != want {
			t.Fatalf("appendFloat(%v) = %s, want %s", v, b, want)
		}
	}
}

// TestJSONRow_JSON holds appendJSON to json.MarshalIndent over rows with
// every field set or null at random, strings that need escaping and
// floats of every size; a NaN is refused as encoding/json refuses it.
func TestJSONRow_JSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	strs := []string{"n1:4938 gpu:0", "", "<b>&amp;</b>", `say "x" \ y`, "two\nlines\t", "ünï", "\u2028", "bad\xffutf8", "\x01"}
	var line []byte
	number := func(rng *rand.Rand) float64 {
		x := randomNumber(rng)
		if rng.IntN(10) == 0 {
			x *= math.Pow(10, float64(rng.IntN(50)-25)) // e notation on both sides
		}
		return x
	}
	for range 2000 {
		var jr jsonRow
		randomRow(rng, &jr, strs, number)
		want, err := json.MarshalIndent(&jr, "    ", "  ")
		if err != nil {
			t.Fatal(err)
		}
		line, err = jr.appendJSON(line[:0])
		if err != nil || string(line) != string(want) {
			t.Fatalf("appendJSON = %v\n%s\nwant (encoding/json)\n%s", err, line, want)
		}
	}
	jr := jsonRow{Coverage: math.NaN()}
	if _, err := jr.appendJSON(nil); err == nil {
		t.Error("a NaN coverage was written")
	}
}
