package export

import (
	"encoding/json"
	"strconv"
	"strings"

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
		}},
	{name: "daemon_time_ms",
		desc: "the daemon's own timestamp, Unix ms, as sent",
		text: func(dst []byte, _ *lineEncoder, r *store.Reading) []byte {
			return strconv.AppendInt(dst, r.DaemonMs, 10)
		}},
	{name: "endpoint", str: true, series: true,
		desc: "the zeusd endpoint (host:port or socket path)",
		text: func(dst []byte, e *lineEncoder, _ *store.Reading) []byte { return append(dst, e.k.Endpoint...) }},
	{name: "kind", str: true, series: true,
		desc: "gpu, cpu (package) or dram",
		text: func(dst []byte, e *lineEncoder, _ *store.Reading) []byte { return append(dst, e.k.Kind.String()...) }},
	{name: "device", series: true,
		desc: "device index on the endpoint",
		text: func(dst []byte, e *lineEncoder, _ *store.Reading) []byte {
			return strconv.AppendInt(dst, int64(e.k.Device), 10)
		}},
	{name: "power_w",
		desc: "power in watts (zeusd's milliwatts / 1000, the shortest decimal that reads back the same); gpu: " +
			query.ValueMeaning(store.KindGPU) + "; cpu/dram: " + query.ValueMeaning(store.KindCPU),
		text: func(dst []byte, _ *lineEncoder, r *store.Reading) []byte {
			return strconv.AppendFloat(dst, float64(r.MilliWatts)/1000, 'f', -1, 64)
		}},
	{name: "seed",
		desc: "true for values read with get_power at a (re)connect rather than streamed",
		text: func(dst []byte, _ *lineEncoder, r *store.Reading) []byte { return strconv.AppendBool(dst, r.Seed) }},
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
