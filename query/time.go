package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime parses a time a user typed into Unix milliseconds: RFC 3339
// with or without a zone ("2026-11-27T16:00:00Z", "2026-11-27T17:00:00",
// "2026-11-27 17:00:00.250"; no zone means loc), or Unix seconds or
// milliseconds (ten digits or fewer are seconds, and may carry a fraction),
// or "now" and "now-15m" / "-15m" relative to now.
func ParseTime(s string, now time.Time, loc *time.Location) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	if s == "now" {
		return now.UnixMilli(), nil
	}
	if rel, ok := strings.CutPrefix(s, "now"); ok {
		s = rel
	}
	if (s[0] == '-' || s[0] == '+') && len(s) > 1 && !isDigits(s[1:]) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("time %q: %v", s, err)
		}
		return now.Add(d).UnixMilli(), nil
	}
	if isNumber(s) {
		intPart, _, frac := strings.Cut(s, ".")
		digits := len(strings.TrimPrefix(intPart, "-"))
		if digits <= 10 || frac {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("time %q: %v", s, err)
			}
			return int64(f*1000 + 0.5), nil
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("time %q: %v", s, err)
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
	return 0, fmt.Errorf("time %q: want RFC 3339 (2026-11-27T16:00:00Z, zone optional), Unix seconds or milliseconds, now or -15m", s)
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
