package query

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the bytes of a report row in CSV and in JSON, written
// without encoding/csv or encoding/json (a query --every writes millions
// of rows), and held to them by tests.

// appendCSV appends jr as one CSV line: its fields in order (the JSON
// keys, ReportColumns), numbers as JSON writes them, null as empty, the
// bytes encoding/csv writes (quoting by its rules, "\n" line ends). A
// test holds it to the struct and to encoding/csv. A query --every
// writes millions of these: no cell is a string of its own.
func (jr *jsonRow) appendCSV(b []byte) []byte {
	s := func(v string) { b = appendCSVString(b, v); b = append(b, ',') }
	ps := func(v *string) {
		if v != nil {
			b = appendCSVString(b, *v)
		}
		b = append(b, ',')
	}
	i := func(v int64) { b = strconv.AppendInt(b, v, 10); b = append(b, ',') }
	pi := func(v *int64) {
		if v != nil {
			b = strconv.AppendInt(b, *v, 10)
		}
		b = append(b, ',')
	}
	pi32 := func(v *int32) {
		if v != nil {
			b = strconv.AppendInt(b, int64(*v), 10)
		}
		b = append(b, ',')
	}
	f := func(v float64) { b = appendFloat(b, v); b = append(b, ',') }
	pf := func(v *float64) {
		if v != nil {
			b = appendFloat(b, *v)
		}
		b = append(b, ',')
	}
	s(jr.From)
	i(jr.FromMs)
	s(jr.To)
	i(jr.ToMs)
	ps(jr.Window)
	ps(jr.Instance)
	s(jr.Group)
	s(jr.Level)
	ps(jr.Endpoint)
	ps(jr.Kind)
	pi32(jr.Device)
	f(jr.Joules)
	i(jr.EnergyUJ)
	f(jr.BoundJ)
	pf(jr.AvgW)
	f(jr.PeakW)
	i(jr.DurationMs)
	i(int64(jr.Samples))
	f(jr.Coverage)
	i(int64(jr.Gaps))
	i(jr.LongestGapMs)
	i(int64(jr.Series))
	pf(jr.AnchoredJ)
	pf(jr.AnchoredBoundJ)
	pf(jr.FromCounterJ)
	pf(jr.FromStreamJ)
	pi(jr.CounterMs)
	pi(jr.BridgedMs)
	pi(jr.UncoveredMs)
	pf(jr.CounterJ)
	pf(jr.CounterRatio)
	pf(jr.TrapezoidJ)
	pf(jr.TrapezoidDiff)
	b[len(b)-1] = '\n' // the last comma
	return b
}

// appendCSVHeader appends the header line: the JSON keys.
func appendCSVHeader(b []byte) []byte {
	for i, k := range rowKeys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVString(b, k)
	}
	return append(b, '\n')
}

// appendCSVString appends v as a CSV field, quoted where encoding/csv
// quotes it: when it holds a comma, a quote, \r or \n, starts with a
// space, or is `\.`.
func appendCSVString(b []byte, v string) []byte {
	if !csvNeedsQuotes(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for {
		j := strings.IndexByte(v, '"')
		if j < 0 {
			break
		}
		b = append(append(b, v[:j+1]...), '"')
		v = v[j+1:]
	}
	return append(append(b, v...), '"')
}

func csvNeedsQuotes(v string) bool {
	if v == "" {
		return false
	}
	if v == `\.` {
		return true
	}
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(v)
	return unicode.IsSpace(r)
}

// appendFloat appends v as strconv.FormatFloat(v, 'f', -1, 64) does, the
// JSON form of the row's numbers. Most of them are whole µJ or mW (an
// integer divided by 10^6 or 10^3): those are written from the integer,
// which is the same digits (a decimal of at most 15 significant digits
// is the shortest that rounds to its float) at a fraction of the cost.
func appendFloat(b []byte, v float64) []byte {
	n := math.Round(v * 1e6)
	if math.Abs(n) >= 1e15 || float64(int64(n))/1e6 != v || n == 0 {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	u := int64(n)
	if u < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendInt(b, u/1e6, 10)
	frac := u % 1e6
	if frac == 0 {
		return b
	}
	var digits [7]byte
	x := 1e6 + frac // a leading 1 keeps the zeros after the point
	end := 7
	for x%10 == 0 {
		x /= 10
		end--
	}
	strconv.AppendInt(digits[:0], x, 10)
	b = append(b, '.')
	return append(b, digits[1:end]...)
}

// rowKeys are the JSON row's keys, in field order (ReportColumns).
var rowKeys = func() []string {
	var keys []string
	for _, c := range ReportColumns() {
		keys = append(keys, c[0])
	}
	return keys
}()

// appendJSON appends jr as json.MarshalIndent(jr, "    ", "  ") writes
// it (a row of the JSON report's "rows"), without reflection: the fields
// in order, under rowKeys. A test holds it to encoding/json. Like
// encoding/json it refuses a NaN or an infinity.
func (jr *jsonRow) appendJSON(b []byte) ([]byte, error) {
	var bad error
	field := 0
	key := func() {
		b = append(append(append(b, "\n      \""...), rowKeys[field]...), "\": "...)
		field++
	}
	// null writes a null field when isNil, and says so.
	null := func(isNil bool) bool {
		if isNil {
			key()
			b = append(b, "null,"...)
		}
		return isNil
	}
	s := func(v string) { key(); b = append(appendJSONString(b, v), ',') }
	i := func(v int64) { key(); b = append(strconv.AppendInt(b, v, 10), ',') }
	f := func(v float64) {
		key()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad = fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(v, 'g', -1, 64))
		}
		b = append(appendJSONFloat(b, v), ',')
	}
	ps := func(v *string) {
		if !null(v == nil) {
			s(*v)
		}
	}
	pi := func(v *int64) {
		if !null(v == nil) {
			i(*v)
		}
	}
	pi32 := func(v *int32) {
		if !null(v == nil) {
			i(int64(*v))
		}
	}
	pf := func(v *float64) {
		if !null(v == nil) {
			f(*v)
		}
	}
	b = append(b, '{')
	s(jr.From)
	i(jr.FromMs)
	s(jr.To)
	i(jr.ToMs)
	ps(jr.Window)
	ps(jr.Instance)
	s(jr.Group)
	s(jr.Level)
	ps(jr.Endpoint)
	ps(jr.Kind)
	pi32(jr.Device)
	f(jr.Joules)
	i(jr.EnergyUJ)
	f(jr.BoundJ)
	pf(jr.AvgW)
	f(jr.PeakW)
	i(jr.DurationMs)
	i(int64(jr.Samples))
	f(jr.Coverage)
	i(int64(jr.Gaps))
	i(jr.LongestGapMs)
	i(int64(jr.Series))
	pf(jr.AnchoredJ)
	pf(jr.AnchoredBoundJ)
	pf(jr.FromCounterJ)
	pf(jr.FromStreamJ)
	pi(jr.CounterMs)
	pi(jr.BridgedMs)
	pi(jr.UncoveredMs)
	pf(jr.CounterJ)
	pf(jr.CounterRatio)
	pf(jr.TrapezoidJ)
	pf(jr.TrapezoidDiff)
	b = append(b[:len(b)-1], "\n    }"...) // the last comma
	return b, bad
}

// appendJSONFloat appends v as encoding/json writes a float64.
func appendJSONFloat(b []byte, v float64) []byte {
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, v, 'e', -1, 64)
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1] // e-09 → e-9, as encoding/json
			b = b[:n-1]
		}
		return b
	}
	return appendFloat(b, v)
}

// appendJSONString appends v as encoding/json writes a string: plain
// ASCII as it is, anything that needs escaping (quotes, controls, the
// HTML characters, non-ASCII) by encoding/json itself.
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), v...), '"')
}
