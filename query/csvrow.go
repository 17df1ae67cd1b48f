package query

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
	for i, c := range ReportColumns() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVString(b, c[0])
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
