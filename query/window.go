package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Interval is a half-open span [From, To) of Unix ms. Every time window
// is one once it is resolved (TimeRange.Resolve).
type Interval struct {
	From, To int64
}

// All is every millisecond there is.
var All = Interval{math.MinInt64, math.MaxInt64}

// Len is the interval's length in ms: zero if empty, math.MaxInt64 for a
// span longer than that (All).
func (iv Interval) Len() int64 {
	if iv.To <= iv.From {
		return 0
	}
	if d := iv.To - iv.From; d > 0 {
		return d
	}
	return math.MaxInt64
}

func clip(iv, to Interval) Interval {
	return Interval{max(iv.From, to.From), min(iv.To, to.To)}
}

// BoundKind says what a Bound stands for.
type BoundKind uint8

// The kinds of Bound.
const (
	BoundOmitted BoundKind = iota // left out: the recording's edge on its side
	BoundTime                     // a time, Bound.Ms
	BoundStart                    // the recording's first millisecond
	BoundEnd                      // the end of the recording
)

// Bound is one end of a TimeRange as the user gave it. The zero value
// is a bound left out.
type Bound struct {
	Kind BoundKind
	Ms   int64 // Unix ms, for BoundTime
}

// At is the bound at the time ms.
func At(ms int64) Bound { return Bound{Kind: BoundTime, Ms: ms} }

// String is the bound's text form, which UnmarshalText reads back: "",
// "start", "end", or the Unix ms in decimal.
func (b Bound) String() string {
	switch b.Kind {
	case BoundTime:
		return strconv.FormatInt(b.Ms, 10)
	case BoundStart:
		return "start"
	case BoundEnd:
		return "end"
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (b Bound) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads String's form; a number is always Unix ms.
func (b *Bound) UnmarshalText(text []byte) error {
	switch s := string(text); s {
	case "":
		*b = Bound{}
	case "start":
		*b = Bound{Kind: BoundStart}
	case "end":
		*b = Bound{Kind: BoundEnd}
	default:
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Invalid("time bound %q: want \"\", start, end or Unix ms", s)
		}
		*b = At(ms)
	}
	return nil
}

// ParseBound parses a bound a user typed: empty (left out), "start" or
// "end" (of the recording), or a time as ParseTime reads it.
func ParseBound(s string, now time.Time, loc *time.Location) (Bound, error) {
	switch s = strings.TrimSpace(s); s {
	case "":
		return Bound{}, nil
	case "start":
		return Bound{Kind: BoundStart}, nil
	case "end":
		return Bound{Kind: BoundEnd}, nil
	}
	ms, err := ParseTime(s, now, loc)
	return At(ms), err
}

// TimeRange is a read's time window as the user gave it, before it meets
// a file. The zero value is the whole recording.
type TimeRange struct {
	From, To Bound
}

// Between is the range [from, to) of Unix ms.
func Between(from, to int64) TimeRange { return TimeRange{At(from), At(to)} }

// IsAll reports whether both bounds were left out.
func (r TimeRange) IsAll() bool { return r.From.Kind == BoundOmitted && r.To.Kind == BoundOmitted }

// needsSpan reports whether resolving r needs the recording's span.
func (r TimeRange) needsSpan() bool {
	return !r.IsAll() && (r.From.Kind != BoundTime || r.To.Kind != BoundTime)
}

// Resolve turns r into the interval it stands for in a recording that
// spans recording: a bound left out, "start" and "end" are the
// recording's edges, and with both bounds left out the range is All
// (every reading). This is where a window's emptiness is checked.
func (r TimeRange) Resolve(recording Interval) (Interval, error) {
	if r.IsAll() {
		return All, nil
	}
	edge := func(b Bound, omitted int64) int64 {
		switch b.Kind {
		case BoundTime:
			return b.Ms
		case BoundStart:
			return recording.From
		case BoundEnd:
			return recording.To
		}
		return omitted
	}
	iv := Interval{edge(r.From, recording.From), edge(r.To, recording.To)}
	if iv.To <= iv.From {
		return iv, Invalid("empty window: its end %s is not after its start %s", r.To.describe(iv.To), r.From.describe(iv.From))
	}
	return iv, nil
}

// describe names b for an error: its time, and the edge it stands for.
func (b Bound) describe(ms int64) string {
	switch b.Kind {
	case BoundStart, BoundEnd:
		return fmt.Sprintf("%s (%s of the recording)", FormatTime(ms), b)
	case BoundOmitted:
		return fmt.Sprintf("%s (the recording's edge)", FormatTime(ms))
	}
	return FormatTime(ms)
}

// ParseTime parses a time a user typed into Unix milliseconds: RFC 3339
// with or without a zone ("2026-11-27T16:00:00Z", "2026-11-27T17:00:00",
// "2026-11-27 17:00:00.250"; no zone means loc), or Unix seconds or
// milliseconds (ten digits or fewer are seconds, and may carry a fraction),
// or "now" and "now-15m" / "-15m" relative to now. Errors match
// ErrInvalid.
func ParseTime(s string, now time.Time, loc *time.Location) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, Invalid("empty time")
	}
	if s == "now" {
		return now.UnixMilli(), nil
	}
	rel, relative := strings.CutPrefix(s, "now")
	if !relative && (s[0] == '-' || s[0] == '+') && len(s) > 1 && !isNumber(s[1:]) {
		rel, relative = s, true
	}
	if relative {
		d, err := time.ParseDuration(rel)
		if err != nil || (rel[0] != '-' && rel[0] != '+') {
			return 0, Invalid("time %q: want now, now-15m, -15m or +1h after now", s)
		}
		return now.Add(d).UnixMilli(), nil
	}
	if isNumber(s) {
		intPart, _, frac := strings.Cut(s, ".")
		digits := len(strings.TrimPrefix(intPart, "-"))
		if digits <= 10 || frac {
			f, err := strconv.ParseFloat(s, 64)
			ms := math.Round(f * 1000)
			if err != nil || ms < math.MinInt64 || ms >= math.MaxInt64 {
				return 0, Invalid("time %q: out of range", s)
			}
			return int64(ms), nil
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, Invalid("time %q: out of range", s)
		}
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		var t time.Time
		var err error
		if strings.Contains(layout, "Z07:00") {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, loc)
		}
		if err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, Invalid("time %q: want RFC 3339 (2026-11-27T16:00:00Z, zone optional), Unix seconds or milliseconds, now or -15m", s)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, ok := strings.Cut(s, ".")
	return isDigits(intPart) && (!ok || isDigits(frac))
}

// FormatTime renders Unix ms as RFC 3339 UTC with milliseconds.
func FormatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
