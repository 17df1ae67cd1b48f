package export

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// column is one column of the raw table (one row per stored reading).
type column struct {
	name, desc string
	// text appends the value as CSV and JSON Lines write it; str says
	// it is a string (JSON quotes it, CSV quotes it when it must).
	text func(dst []byte, e *lineEncoder, r *store.Reading) []byte
	str  bool
	// series says the value depends only on the series, not the reading.
	series bool
	// parse reads the value back (RawFile) from its text: a CSV field,
	// or a JSON value's text (a string unquoted). accepts says what it
	// takes, for the import help.
	parse   func(r *store.Reading, s string) error
	accepts string
	// missing, set for a column that a file read back may lack, says
	// what stands in for it (fill sets it).
	missing string
	fill    func(r *store.Reading)
}

// rawColumns is the raw table, in order: the one list from which CSV's
// header and lines, JSON Lines' objects, Parquet's column descriptions
// (MetaColumns) and the export help derive. Parquet's schema is the
// readingRow struct, whose fields a test holds to this list. The units
// are the same in every format: time as RFC 3339 UTC with milliseconds
// in text (a TIMESTAMP in Parquet), power in watts.
var rawColumns = []column{
	{name: "time", str: true,
		desc: "clock-corrected time of the reading (UTC, ms): the daemon's time + its clock offset",
		text: func(dst []byte, e *lineEncoder, r *store.Reading) []byte {
			return e.appendTime(dst, r.TimeMs)
		},
		accepts: "RFC 3339 with a zone (2026-11-28T16:00:00.250Z; a space may stand for the T; finer than ms is cut to the ms) or Unix ms",
		parse: func(r *store.Reading, s string) (err error) {
			r.TimeMs, err = parseTimeMs(s)
			return err
		}},
	{name: "daemon_time_ms",
		desc: "the daemon's own timestamp, Unix ms, as sent",
		text: func(dst []byte, _ *lineEncoder, r *store.Reading) []byte {
			return strconv.AppendInt(dst, r.DaemonMs, 10)
		},
		accepts: "Unix ms",
		parse: func(r *store.Reading, s string) (err error) {
			if r.DaemonMs, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("%q is not a whole number of ms", s)
			}
			return nil
		},
		missing: "time, no clock offset",
		fill:    func(r *store.Reading) { r.DaemonMs = r.TimeMs }},
	{name: "endpoint", str: true, series: true,
		desc:    "the zeusd endpoint (host:port or socket path)",
		text:    func(dst []byte, e *lineEncoder, _ *store.Reading) []byte { return append(dst, e.k.Endpoint...) },
		accepts: "any name without control characters, e.g. node1:4938",
		parse: func(r *store.Reading, s string) error {
			if s == "" || strings.IndexFunc(s, unicode.IsControl) >= 0 {
				return fmt.Errorf("%q: want a name without control characters", s)
			}
			if s != r.Endpoint { // most rows repeat the last row's: keep its string
				r.Endpoint = strings.Clone(s)
			}
			return nil
		}},
	{name: "kind", str: true, series: true,
		desc:    "gpu, cpu (package) or dram",
		text:    func(dst []byte, e *lineEncoder, _ *store.Reading) []byte { return append(dst, e.k.Kind.String()...) },
		accepts: "gpu, cpu or dram",
		parse: func(r *store.Reading, s string) (err error) {
			r.Kind, err = store.ParseKind(s)
			return err
		}},
	{name: "device", series: true,
		desc: "device index on the endpoint",
		text: func(dst []byte, e *lineEncoder, _ *store.Reading) []byte {
			return strconv.AppendInt(dst, int64(e.k.Device), 10)
		},
		accepts: "0, 1, ...",
		parse: func(r *store.Reading, s string) error {
			d, err := strconv.ParseInt(s, 10, 32)
			if err != nil || d < 0 {
				return fmt.Errorf("%q is not a device index (0, 1, ...)", s)
			}
			r.Device = int32(d)
			return nil
		}},
	{name: "power_w",
		desc: "power in watts (zeusd's milliwatts / 1000, the shortest decimal that reads back the same); gpu: " +
			query.ValueMeaning(store.KindGPU) + "; cpu/dram: " + query.ValueMeaning(store.KindCPU),
		text: func(dst []byte, _ *lineEncoder, r *store.Reading) []byte {
			return strconv.AppendFloat(dst, float64(r.MilliWatts)/1000, 'f', -1, 64)
		},
		accepts: "watts, a decimal (kept to the milliwatt)",
		parse: func(r *store.Reading, s string) error {
			w, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number of watts", s)
			}
			r.MilliWatts, err = milliwatts(w)
			return err
		}},
	{name: "seed",
		desc:    "true for values read with get_power at a (re)connect rather than streamed",
		text:    func(dst []byte, _ *lineEncoder, r *store.Reading) []byte { return strconv.AppendBool(dst, r.Seed) },
		accepts: "true or false",
		parse: func(r *store.Reading, s string) (err error) {
			if r.Seed, err = strconv.ParseBool(s); err != nil {
				return fmt.Errorf("%q: want true or false", s)
			}
			return nil
		},
		missing: "false",
		fill:    func(r *store.Reading) { r.Seed = false }},
}

// maxWatts is the most power_w a file read back may hold: the store's
// limit of 2^62 mW, rounded down.
const maxWatts = 4e15

// milliwatts converts watts as the raw table writes them (milliwatts /
// 1000) back to milliwatts, exactly.
func milliwatts(w float64) (int64, error) {
	if !(w >= 0 && w <= maxWatts) { // NaN too
		return 0, fmt.Errorf("%v W: want a number of watts from 0 to %g", w, maxWatts)
	}
	return int64(math.Round(w * 1000)), nil
}

// parseTimeMs reads a time column back: Unix ms, or RFC 3339 with a
// zone (a space for the T allowed), cut to the millisecond.
func parseTimeMs(s string) (int64, error) {
	if isInteger(s) {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			return ms, nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 10 && s[10] == ' ' {
		t, err = time.Parse(time.RFC3339Nano, s[:10]+"T"+s[11:])
	}
	if err != nil {
		return 0, fmt.Errorf("%q: want RFC 3339 with a zone (2026-11-28T16:00:00.250Z) or Unix ms", s)
	}
	return t.UnixMilli(), nil // whole ms, rounded down
}

// isInteger reports whether s is decimal digits, after an optional sign.
func isInteger(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ImportColumns lists the columns a CSV or JSON Lines file read back
// (wattrec import) may have, in the raw table's order: name, whether it
// is required (or what stands in when it is missing), and the values
// accepted.
func ImportColumns() [][3]string {
	out := make([][3]string, len(rawColumns))
	for i, c := range rawColumns {
		need := "required"
		if c.fill != nil {
			need = "optional (default: " + c.missing + ")"
		}
		out[i] = [3]string{c.name, need, c.accepts}
	}
	return out
}

// RawColumns lists the raw table's columns with their descriptions, in
// order, as help texts show them.
func RawColumns() [][2]string {
	out := make([][2]string, len(rawColumns))
	for i, c := range rawColumns {
		out[i] = [2]string{c.name, c.desc}
	}
	return out
}

// CSVHeader is the header line of CSV.
var CSVHeader = func() string {
	names := make([]string, len(rawColumns))
	for i, c := range rawColumns {
		names[i] = c.name
	}
	return strings.Join(names, ",")
}()

func rawDescriptions() map[string]string {
	m := make(map[string]string, len(rawColumns))
	for _, c := range rawColumns {
		m[c.name] = c.desc
	}
	return m
}

// lineEncoder writes the raw rows of one series as CSV or JSON Lines
// lines, with the columns that depend only on the series encoded once.
type lineEncoder struct {
	k     store.SeriesKey
	parts []linePart

	// The formatted time of the last minute seen, up to its seconds:
	// readings come in time order, so most reuse it.
	minute     int64
	minuteText []byte
}

// linePart is literal bytes, then (unless col is nil) one column's value.
type linePart struct {
	lit []byte
	col *column
}

func newLineEncoder(k store.SeriesKey, jsonl bool) *lineEncoder {
	e := &lineEncoder{k: k}
	var lit []byte
	if jsonl {
		lit = append(lit, '{')
	}
	for i := range rawColumns {
		c := &rawColumns[i]
		if i > 0 {
			lit = append(lit, ',')
		}
		if jsonl {
			lit = append(appendJSONString(lit, c.name), ':')
		}
		if !c.series {
			e.parts = append(e.parts, linePart{lit, c})
			lit = nil
			continue
		}
		v := string(c.text(nil, e, nil))
		switch {
		case jsonl && c.str:
			lit = appendJSONString(lit, v)
		case c.str:
			lit = append(lit, csvField(v)...)
		default:
			lit = append(lit, v...)
		}
	}
	if jsonl {
		lit = append(lit, '}')
	}
	e.parts = append(e.parts, linePart{lit: append(lit, '\n')})
	return e
}

// append appends r's line. The per-reading string columns (time) never
// need escaping.
func (e *lineEncoder) append(dst []byte, r *store.Reading, jsonl bool) []byte {
	for _, p := range e.parts {
		dst = append(dst, p.lit...)
		if p.col == nil {
			continue
		}
		if jsonl && p.col.str {
			dst = append(dst, '"')
			dst = p.col.text(dst, e, r)
			dst = append(dst, '"')
			continue
		}
		dst = p.col.text(dst, e, r)
	}
	return dst
}

// appendTime appends ms as query.FormatTime does (RFC 3339 UTC with
// milliseconds), formatting the minute once for all its readings.
func (e *lineEncoder) appendTime(dst []byte, ms int64) []byte {
	minute := ms - ms%60_000
	if ms%60_000 < 0 {
		minute -= 60_000
	}
	if e.minuteText == nil || minute != e.minute {
		text := query.FormatTime(minute) // 2006-01-02T15:04:05.000Z
		e.minute, e.minuteText = minute, []byte(text[:len(text)-len("00.000Z")])
	}
	off := ms - minute // 0 ≤ off < 60 000
	sec, milli := off/1000, off%1000
	dst = append(dst, e.minuteText...)
	return append(dst, byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
