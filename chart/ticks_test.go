package chart

import (
	"strings"
	"testing"
	"time"
)

func TestTimeTicks(t *testing.T) {
	nepal := time.FixedZone("NPT", 5*3600+45*60)
	day0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	for _, tc := range []struct {
		name     string
		loc      *time.Location
		from, to time.Time
		want     []string // the labelled ticks, "|" for a line break
	}{
		{"Seconds", time.UTC, day0.Add(16*time.Hour + 1*time.Second), day0.Add(16*time.Hour + 10*time.Second),
			[]string{"16:00:01|Nov 28", "16:00:02", "16:00:03", "16:00:04", "16:00:05", "16:00:06", "16:00:07", "16:00:08", "16:00:09", "16:00:10"}},
		{"DayInUTC", time.UTC, day0.Add(-90 * time.Minute), day0.Add(22*time.Hour + 30*time.Minute),
			[]string{"00:00|Nov 28", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00"}},
		{"AcrossMidnight", time.UTC, day0.Add(-5 * time.Hour), day0.Add(4 * time.Hour),
			[]string{"19:00|Nov 27", "20:00", "21:00", "22:00", "23:00", "00:00|Nov 28", "01:00", "02:00", "03:00", "04:00"}},
		{"LocalHours", nepal, time.Date(2026, 11, 28, 9, 10, 0, 0, nepal), time.Date(2026, 11, 28, 15, 50, 0, 0, nepal),
			[]string{"10:00|Nov 28", "11:00", "12:00", "13:00", "14:00", "15:00"}},
		{"Milliseconds", time.UTC, day0.Add(100 * time.Millisecond), day0.Add(900 * time.Millisecond),
			[]string{"00:00:00.1|Nov 28", "00:00:00.2", "00:00:00.3", "00:00:00.4", "00:00:00.5", "00:00:00.6", "00:00:00.7", "00:00:00.8", "00:00:00.9"}},
		{"Weeks", time.UTC, day0, day0.Add(60 * 24 * time.Hour),
			[]string{"Nov 28", "Dec 5", "Dec 12", "Dec 19", "Dec 26", "Jan 2", "Jan 9", "Jan 16", "Jan 23"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			minor := 0
			for _, tk := range (timeTicks{loc: tc.loc, max: 10}).Ticks(ms(tc.from), ms(tc.to)) {
				if tk.Value < ms(tc.from) || tk.Value > ms(tc.to) {
					t.Errorf("tick at %v outside the window", time.UnixMilli(int64(tk.Value)))
				}
				if tk.IsMinor() {
					minor++
					continue
				}
				got = append(got, strings.ReplaceAll(tk.Label, "\n", "|"))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("ticks\n%q\nwant\n%q", got, tc.want)
			}
			if tc.name != "Weeks" && minor == 0 {
				t.Error("no minor ticks")
			}
		})
	}
}

func TestValueTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 2700, "0 500 1000 1500 2000 2500"},
		{0, 330, "0 50 100 150 200 250 300"},
		{0, 1.2, "0.0 0.2 0.4 0.6 0.8 1.0 1.2"},
		{0, 11, "0 2 4 6 8 10"},
		{0, 23, "0 5 10 15 20"},
		{0, 20, "0.0 2.5 5.0 7.5 10.0 12.5 15.0 17.5 20.0"},
		{0, 1700, "0 250 500 750 1000 1250 1500"},
		{0, 0.05, "0.00 0.01 0.02 0.03 0.04 0.05"},
	} {
		var got []string
		minor := 0
		for _, tk := range (valueTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.IsMinor() {
				minor++
				continue
			}
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != tc.want || minor == 0 {
			t.Errorf("ticks of [%v, %v]: %q and %d minor, want %q", tc.lo, tc.hi, got, minor, tc.want)
		}
	}
}
