package chart

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
)

// tickSteps are the spacings a time axis chooses from, in ms: each a
// round number on a clock.
var tickSteps = []int64{1, 2, 5, 10, 20, 50, 100, 200, 500,
	1e3, 2e3, 5e3, 10e3, 15e3, 30e3,
	60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3,
	3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3,
	86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 28 * 86400e3}

const day = 86400e3

// timeTicks marks a time axis of Unix ms with at most max labelled
// ticks at round wall-clock times in loc (on the hour, at midnight,
// ...), and unlabelled minor ticks between them. A label shows the
// date on the first tick and wherever the date changes.
type timeTicks struct {
	loc *time.Location
	max int
}

// step is the major spacing of the window [from, to] and the minor one.
func (tt timeTicks) step(from, to float64) (major, minor int64) {
	span := to - from
	major = tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/float64(s) <= float64(max(tt.max, 2)) {
			major = s
			break
		}
	}
	minor = major
	if major >= day {
		return major, minor
	}
	for _, s := range tickSteps { // the finest step dividing major into at most 6
		if s < major && major%s == 0 && major/s <= 6 {
			minor = s
			break
		}
	}
	return major, minor
}

// Ticks implements plot.Ticker.
func (tt timeTicks) Ticks(from, to float64) []plot.Tick {
	major, minor := tt.step(from, to)
	var ticks []plot.Tick
	prevDate := ""
	for _, ms := range tt.at(int64(from), int64(to), minor) {
		t := time.UnixMilli(ms).In(tt.loc)
		if !tt.onStep(t, ms, major) {
			ticks = append(ticks, plot.Tick{Value: float64(ms)})
			continue
		}
		label := t.Format(clockLayout(major))
		if date := t.Format("Jan 2"); major < day && date != prevDate {
			label += "\n" + date
			prevDate = date
		}
		ticks = append(ticks, plot.Tick{Value: float64(ms), Label: label})
	}
	return ticks
}

// at lists the multiples of step in [from, to] on loc's wall clock:
// counted from local midnight for steps up to a day, whole days after.
func (tt timeTicks) at(from, to, step int64) []int64 {
	var out []int64
	t := time.UnixMilli(from).In(tt.loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, tt.loc)
	if step >= day {
		for d := midnight; d.UnixMilli() <= to; d = d.AddDate(0, 0, int(step/day)) {
			if ms := d.UnixMilli(); ms >= from {
				out = append(out, ms)
			}
		}
		return out
	}
	for m := midnight; m.UnixMilli() <= to; m = m.AddDate(0, 0, 1) {
		base := m.UnixMilli()
		first := base
		if from > base {
			first = base + (from-base+step-1)/step*step
		}
		next := m.AddDate(0, 0, 1).UnixMilli()
		for ms := first; ms <= to && ms < next; ms += step {
			out = append(out, ms)
		}
	}
	return out
}

// onStep reports whether the tick at ms (t in loc) is a multiple of
// major on the wall clock.
func (tt timeTicks) onStep(t time.Time, ms, major int64) bool {
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, tt.loc)
	if major >= day {
		return ms == midnight.UnixMilli()
	}
	return (ms-midnight.UnixMilli())%major == 0
}

// clockLayout is the time format of labels step apart.
func clockLayout(step int64) string {
	switch {
	case step >= day:
		return "Jan 2"
	case step >= 60e3:
		return "15:04"
	case step >= 1e3:
		return "15:04:05"
	case step >= 100:
		return "15:04:05.0"
	case step >= 10:
		return "15:04:05.00"
	}
	return "15:04:05.000"
}

// ZoneLabel names loc as a chart's time axis does: "UTC", or "local
// time, CET (UTC+01:00)" at t.
func ZoneLabel(loc *time.Location, t time.Time) string {
	name, off := t.In(loc).Zone()
	switch {
	case loc == time.UTC:
		return "UTC"
	case name == "UTC" && off == 0:
		return "local time, UTC"
	}
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("local time, %s (UTC%c%02d:%02d)", name, sign, off/3600, off%3600/60)
}

// valueTicks marks a value axis (watts, joules) from its minimum at
// round steps (1, 2, 2.5 or 5 × a power of ten) that give 4 to 8
// labelled ticks, with unlabelled ones between, labelled with as few
// decimals as the step needs.
type valueTicks struct{}

// Ticks implements plot.Ticker.
func (valueTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 4, 64)}}
	}
	mag := math.Pow(10, math.Floor(math.Log10((hi-lo)/4)))
	var step, minor float64
	for _, m := range []struct{ major, minors float64 }{{1, 5}, {2, 4}, {2.5, 5}, {5, 5}, {10, 5}} {
		step, minor = m.major*mag, m.major*mag/m.minors
		if (hi-lo)/step <= 8 {
			break
		}
	}
	decimals := 0 // as many as the step has
	for scaled := step; decimals < 6 && math.Abs(scaled-math.Round(scaled)) > 1e-9*scaled; decimals++ {
		scaled *= 10
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/minor-1e-9) * minor
	for i := 0; ; i++ {
		v := first + float64(i)*minor
		if v > hi+1e-9*step {
			break
		}
		if r := math.Abs(v/step - math.Round(v/step)); r < 1e-6 {
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		} else {
			ticks = append(ticks, plot.Tick{Value: v})
		}
	}
	return ticks
}
