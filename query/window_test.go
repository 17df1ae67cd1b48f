package query_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// The clock and zone the parse tests run in: "now" is 2026-11-28 16:00
// UTC, and a time without a zone is in CET (UTC+1).
var (
	parseNow = time.Date(2026, 11, 28, 16, 0, 0, 0, time.UTC)
	parseLoc = time.FixedZone("CET", 3600)
)

// utc is the Unix ms of a UTC wall time on 2026-11-28.
func utc(hour, min, sec, ms int) int64 {
	return time.Date(2026, 11, 28, hour, min, sec, ms*int(time.Millisecond), time.UTC).UnixMilli()
}

// parseBoundCases are inputs ParseBound accepts, with the bound each
// stands for.
var parseBoundCases = []struct {
	in   string
	want query.Bound
}{
	// Left out, and the recording's edges.
	{"", query.Bound{}},
	{"   \t\n", query.Bound{}},
	{"start", query.Bound{Kind: query.BoundStart}},
	{"end", query.Bound{Kind: query.BoundEnd}},
	{"\tstart\n", query.Bound{Kind: query.BoundStart}},
	{"  end  ", query.Bound{Kind: query.BoundEnd}},

	// Negative Unix seconds round to the nearest ms, like positive ones.
	{"-1", query.At(-1000)},
	{"-15", query.At(-15000)},
	{"-1.5", query.At(-1500)},

	// RFC 3339 with a zone: the zone wins over loc.
	{"2026-11-28T16:00:00Z", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28T16:00:00.250Z", query.At(utc(16, 0, 0, 250))},
	{"2026-11-28T17:30:00+01:30", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28T11:00:00-05:00", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28 16:00:00Z", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28 16:00:00.5+00:00", query.At(utc(16, 0, 0, 500))},
	// Without a zone: loc (CET, one hour ahead of UTC).
	{"2026-11-28T17:00:00", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28T17:00:00.125", query.At(utc(16, 0, 0, 125))},
	{"2026-11-28 17:00:00.250", query.At(utc(16, 0, 0, 250))},
	{"2026-11-28T17:00", query.At(utc(16, 0, 0, 0))},
	{"2026-11-28 17:05", query.At(utc(16, 5, 0, 0))},
	{"2026-11-28", query.At(utc(0, 0, 0, 0) - 3600_000)}, // midnight CET
	{" 2026-11-28T16:00:00Z\t", query.At(utc(16, 0, 0, 0))},

	// Unix seconds (ten digits or fewer) and milliseconds (more).
	{"1795881600", query.At(1_795_881_600_000)},
	{"0", query.At(0)},
	{"42", query.At(42_000)},
	{"9999999999", query.At(9_999_999_999_000)},
	{"1795881600123", query.At(1_795_881_600_123)},
	{"12345678901", query.At(12_345_678_901)},
	{"9223372036854775807", query.At(math.MaxInt64)},
	{" 1795881600 ", query.At(1_795_881_600_000)},
	// Fractional seconds, whatever the number of digits.
	{"1795881600.25", query.At(1_795_881_600_250)},
	{"1795881600.5", query.At(1_795_881_600_500)},
	{"1795881600.123", query.At(1_795_881_600_123)},
	{"1795881600123.0", query.At(1_795_881_600_123_000)},
	{"0.001", query.At(1)},
	{"1.5", query.At(1500)},

	// Relative to now.
	{"now", query.At(parseNow.UnixMilli())},
	{" now ", query.At(parseNow.UnixMilli())},
	{"-15m", query.At(parseNow.Add(-15 * time.Minute).UnixMilli())},
	{"now-1h", query.At(parseNow.Add(-time.Hour).UnixMilli())},
	{"now-1.5h", query.At(parseNow.Add(-90 * time.Minute).UnixMilli())},
	{"now+90s", query.At(parseNow.Add(90 * time.Second).UnixMilli())},
	{"+1h30m", query.At(parseNow.Add(90 * time.Minute).UnixMilli())},
	{"-250ms", query.At(parseNow.Add(-250 * time.Millisecond).UnixMilli())},
	{"\t-15m\n", query.At(parseNow.Add(-15 * time.Minute).UnixMilli())},
}

// malformedBounds are inputs ParseBound must reject, in the spirit of
// Prometheus's corruption tables: near misses of every accepted form.
var malformedBounds = []string{
	// "now" followed by something that is not a signed duration, and
	// numbers past int64 milliseconds.
	"now-5",
	"now5",
	"99999999999999999999.5",
	"-99999999999999999999",
	// Words.
	"yesterday",
	"START",
	"End",
	"start end",
	"begin",
	"end-1h",
	"start+5m",
	"nownow",
	"now now",
	"now -1h",
	// Relative times.
	"now-",
	"now+",
	"-",
	"+",
	"--15m",
	"-1x",
	"now-1x",
	"now-15 m",
	"-9999999999999999h",
	"now-1h-",
	// Numbers.
	".",
	".5",
	"1.",
	"1.2.3",
	"1e9",
	"1E9",
	"0x10",
	"1_795_881_600",
	"1,5",
	"99999999999999999999", // 20 digits: past int64 ms
	"NaN",
	"Inf",
	"+Inf",
	"١٢٣", // Arabic-Indic digits
	// Dates and times.
	"2026-13-01T00:00:00Z",
	"2026-11-31",
	"2026-02-30T00:00:00Z",
	"2026-11-28T25:00:00Z",
	"2026-11-28T16:60:00Z",
	"2026-11-28T16:00:00+25:00",
	"2026-11-28T16:00:00 Z",
	"2026-11-28T16:00:00Zjunk",
	"2026-11-28T16:00:00ZZ",
	"2026-11-28T",
	"2026-11",
	"26-11-28",
	"2026/11/28",
	"28.11.2026",
	"16:00",
	"16:00:00",
	"T16:00:00Z",
	"Sat, 28 Nov 2026 16:00:00 GMT",
	// Bytes.
	"\x00",
	"now\x00",
	"\xff\xfe",
	"1795881600\n1795881601",
}

func TestParseBound(t *testing.T) {
	for _, tc := range parseBoundCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := query.ParseBound(tc.in, parseNow, parseLoc)
			if err != nil {
				t.Fatalf("ParseBound(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseBound(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseBound_Malformed(t *testing.T) {
	for _, in := range malformedBounds {
		t.Run(in, func(t *testing.T) {
			got, err := query.ParseBound(in, parseNow, parseLoc)
			if err == nil {
				t.Fatalf("ParseBound(%q) = %+v, want an error", in, got)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "time ") {
				t.Errorf("ParseBound(%q): error %q does not name the time", in, msg)
			}
			if !errors.Is(err, query.ErrInvalid) {
				t.Errorf("ParseBound(%q): %v does not match ErrInvalid", in, err)
			}
		})
	}
}

// textBounds is one bound of each kind, and times at the edges of int64.
var textBounds = []struct {
	b    query.Bound
	text string
}{
	{query.Bound{}, ""},
	{query.Bound{Kind: query.BoundStart}, "start"},
	{query.Bound{Kind: query.BoundEnd}, "end"},
	{query.At(0), "0"},
	{query.At(5000), "5000"},
	{query.At(-1), "-1"},
	{query.At(1_795_881_600_000), "1795881600000"},
	{query.At(math.MaxInt64), "9223372036854775807"},
	{query.At(math.MinInt64), "-9223372036854775808"},
}

func TestBound_MarshalText(t *testing.T) {
	for _, tc := range textBounds {
		t.Run(tc.text, func(t *testing.T) {
			text, err := tc.b.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(text); got != tc.text || tc.b.String() != tc.text {
				t.Fatalf("MarshalText = %q, String = %q, want %q", got, tc.b.String(), tc.text)
			}
			var back query.Bound
			if err := back.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", text, err)
			}
			if back != tc.b {
				t.Fatalf("UnmarshalText(%q) = %+v, want %+v", text, back, tc.b)
			}
		})
	}
}

// TestBound_UnmarshalText: a number is always Unix ms, whatever its
// length, unlike ParseBound, which reads ten digits or fewer as seconds.
func TestBound_UnmarshalText(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    query.Bound
		seconds int64 // what ParseBound reads the same digits as, in ms
	}{
		{"5000", query.At(5000), 5_000_000},
		{"1", query.At(1), 1000},
		{"1795881600", query.At(1_795_881_600), 1_795_881_600_000},
		{"-5000", query.At(-5000), 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var got query.Bound
			if err := got.UnmarshalText([]byte(tc.in)); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("UnmarshalText(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if tc.seconds == 0 {
				return
			}
			parsed, err := query.ParseBound(tc.in, parseNow, parseLoc)
			if err != nil {
				t.Fatal(err)
			}
			if parsed != query.At(tc.seconds) {
				t.Fatalf("ParseBound(%q) = %+v, want %+v (seconds)", tc.in, parsed, query.At(tc.seconds))
			}
		})
	}
	t.Run("Junk", func(t *testing.T) {
		for _, in := range []string{
			"now", "-15m", "5s", "1.5", "5000 ", " 5000", "start ", " end", "Start", "END",
			"2026-11-28T16:00:00Z", "99999999999999999999", "0x10", "1e3", "-", "+", "\x00", "junk",
		} {
			b := query.At(77)
			err := b.UnmarshalText([]byte(in))
			if !errors.Is(err, query.ErrInvalid) {
				t.Errorf("UnmarshalText(%q) = %v, want an error matching ErrInvalid", in, err)
				continue
			}
			if !strings.Contains(err.Error(), "time bound") {
				t.Errorf("UnmarshalText(%q): %q does not say what it read", in, err)
			}
			if b != query.At(77) {
				t.Errorf("UnmarshalText(%q) changed the bound to %+v on error", in, b)
			}
		}
	})
	t.Run("JSON", func(t *testing.T) {
		in := query.TimeRange{From: query.Bound{Kind: query.BoundStart}, To: query.At(5000)}
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(data), `{"From":"start","To":"5000"}`; got != want {
			t.Fatalf("json = %s, want %s", got, want)
		}
		var out query.TimeRange
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		if out != in {
			t.Fatalf("round trip = %+v, want %+v", out, in)
		}
		if err := json.Unmarshal([]byte(`{"From":"yesterday"}`), &out); !errors.Is(err, query.ErrInvalid) {
			t.Fatalf("json junk: %v, want ErrInvalid", err)
		}
	})
}

func TestTimeRange_Resolve(t *testing.T) {
	rec := query.Interval{From: 10_000, To: 20_000}
	start, end := query.Bound{Kind: query.BoundStart}, query.Bound{Kind: query.BoundEnd}
	t.Run("All", func(t *testing.T) {
		got, err := query.TimeRange{}.Resolve(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got != query.All {
			t.Fatalf("got %+v, want All", got)
		}
	})
	for _, tc := range []struct {
		name string
		r    query.TimeRange
		want query.Interval
	}{
		{"FromOmitted", query.TimeRange{To: query.At(15_000)}, query.Interval{From: 10_000, To: 15_000}},
		{"ToOmitted", query.TimeRange{From: query.At(12_000)}, query.Interval{From: 12_000, To: 20_000}},
		{"StartEnd", query.TimeRange{From: start, To: end}, rec},
		{"StartOnly", query.TimeRange{From: start}, rec},
		{"EndOnly", query.TimeRange{To: end}, rec},
		{"StartToTime", query.TimeRange{From: start, To: query.At(11_000)}, query.Interval{From: 10_000, To: 11_000}},
		{"TimeToEnd", query.TimeRange{From: query.At(19_999), To: end}, query.Interval{From: 19_999, To: 20_000}},
		{"Between", query.Between(12_000, 13_000), query.Interval{From: 12_000, To: 13_000}},
		// Explicit times are not clipped to the recording.
		{"Outside", query.Between(0, 5_000), query.Interval{From: 0, To: 5_000}},
		{"Around", query.Between(-1, 1<<40), query.Interval{From: -1, To: 1 << 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.Resolve(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Resolve(%+v) = %+v, want %+v", tc.r, got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name    string
		r       query.TimeRange
		mention []string // what the message must name
	}{
		// --from end: the window starts where the recording ends.
		{"FromEnd", query.TimeRange{From: end}, []string{query.FormatTime(20_000), "end of the recording", "the recording's edge"}},
		// --to start: the window ends where the recording starts.
		{"ToStart", query.TimeRange{To: start}, []string{query.FormatTime(10_000), "start of the recording", "the recording's edge"}},
		{"EndToStart", query.TimeRange{From: end, To: start}, []string{query.FormatTime(10_000), query.FormatTime(20_000)}},
		{"Empty", query.Between(15_000, 15_000), []string{query.FormatTime(15_000)}},
		{"Inverted", query.Between(15_000, 14_000), []string{query.FormatTime(14_000), query.FormatTime(15_000)}},
		{"BeforeRecording", query.TimeRange{To: query.At(5_000)}, []string{query.FormatTime(5_000), query.FormatTime(10_000)}},
		{"AfterRecording", query.TimeRange{From: query.At(25_000)}, []string{query.FormatTime(25_000), query.FormatTime(20_000)}},
	} {
		t.Run("Error/"+tc.name, func(t *testing.T) {
			got, err := tc.r.Resolve(rec)
			if !errors.Is(err, query.ErrInvalid) {
				t.Fatalf("Resolve(%+v) = %+v, %v; want an error matching ErrInvalid", tc.r, got, err)
			}
			msg := err.Error()
			for _, s := range append([]string{"is not after"}, tc.mention...) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
		})
	}
}

func TestInterval_Len(t *testing.T) {
	for _, tc := range []struct {
		name string
		iv   query.Interval
		want int64
	}{
		{"Zero", query.Interval{}, 0},
		{"Empty", query.Interval{From: 5, To: 5}, 0},
		{"Inverted", query.Interval{From: 5, To: 4}, 0},
		{"InvertedExtremes", query.Interval{From: math.MaxInt64, To: math.MinInt64}, 0},
		{"One", query.Interval{From: -1, To: 0}, 1},
		{"Span", query.Interval{From: 1_795_881_600_000, To: 1_795_881_610_000}, 10_000},
		{"Widest", query.Interval{From: 0, To: math.MaxInt64}, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.iv.Len(); got != tc.want {
				t.Fatalf("%+v.Len() = %d, want %d", tc.iv, got, tc.want)
			}
		})
	}
	// All is longer than an int64 can say: its length should saturate,
	// never wrap to a negative number.
	for _, tc := range []struct {
		name string
		iv   query.Interval
	}{
		{"All", query.All},
		{"PastMaxInt64", query.Interval{From: -1, To: math.MaxInt64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.iv.Len(); got != math.MaxInt64 {
				t.Fatalf("%+v.Len() = %d, want it saturated at MaxInt64", tc.iv, tc.iv.Len())
			}
		})
	}
}

func TestDeviceFilter_Text(t *testing.T) {
	for _, tc := range []struct {
		text string
		want query.DeviceFilter
	}{
		{"gpu", query.DeviceFilter{Kind: store.KindGPU, AnyDevice: true}},
		{"cpu", query.DeviceFilter{Kind: store.KindCPU, AnyDevice: true}},
		{"gpu:0", query.DeviceFilter{Kind: store.KindGPU, Device: 0}},
		{"gpu:7", query.DeviceFilter{Kind: store.KindGPU, Device: 7}},
		{"cpu:3", query.DeviceFilter{Kind: store.KindCPU, Device: 3}},
		{"dram:1", query.DeviceFilter{Kind: store.KindDRAM, Device: 1}},
		{"gpu:2147483647", query.DeviceFilter{Kind: store.KindGPU, Device: math.MaxInt32}},
	} {
		t.Run(tc.text, func(t *testing.T) {
			var got query.DeviceFilter
			if err := got.UnmarshalText([]byte(tc.text)); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("UnmarshalText(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
			text, err := got.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if string(text) != tc.text || got.String() != tc.text {
				t.Fatalf("MarshalText = %q, String = %q, want %q", text, got.String(), tc.text)
			}
		})
	}
}

func TestParseDevices(t *testing.T) {
	t.Run("List", func(t *testing.T) {
		got, err := query.ParseDevices("gpu:0, gpu:1 ,cpu:0,dram:1,gpu")
		if err != nil {
			t.Fatal(err)
		}
		want := []query.DeviceFilter{
			{Kind: store.KindGPU, Device: 0},
			{Kind: store.KindGPU, Device: 1},
			{Kind: store.KindCPU, Device: 0},
			{Kind: store.KindDRAM, Device: 1},
			{Kind: store.KindGPU, AnyDevice: true},
		}
		if len(got) != len(want) {
			t.Fatalf("got %d filters %+v, want %d", len(got), got, len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("filter %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
	for _, tc := range []struct{ name, in, mention string }{
		{"UnknownKind", "tpu:0", `"tpu:0"`},
		{"UnknownKindAlone", "npu", `"npu"`},
		{"UpperCase", "GPU:0", `"GPU:0"`},
		{"BadIndex", "gpu:x", `"x" is not a device index`},
		{"NoIndex", "gpu:", `"" is not a device index`},
		{"Negative", "cpu:-1", `"-1" is not a device index`},
		{"TooBig", "gpu:2147483648", `"2147483648" is not a device index`},
		{"TwoIndices", "gpu:1:2", `"1:2" is not a device index`},
		{"Fraction", "gpu:1.5", `"1.5" is not a device index`},
		{"BadInList", "gpu:0,cpu:-3,dram:0", `"-3" is not a device index`},
		{"Empty", "", `""`},
		{"EmptyInList", "gpu:0,,cpu:0", `""`},
		{"TrailingComma", "gpu:0,", `""`},
	} {
		t.Run("Error/"+tc.name, func(t *testing.T) {
			got, err := query.ParseDevices(tc.in)
			if !errors.Is(err, query.ErrInvalid) {
				t.Fatalf("ParseDevices(%q) = %+v, %v; want an error matching ErrInvalid", tc.in, got, err)
			}
			if got != nil {
				t.Errorf("ParseDevices(%q) returned %+v with its error", tc.in, got)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not contain %s", err, tc.mention)
			}
		})
	}
}

// TestFilter_Match: "cpu:N" also selects DRAM N; "gpu" any GPU; the
// endpoint list and the device list must both pass.
func TestFilter_Match(t *testing.T) {
	gpu0 := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0}
	gpu1 := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 1}
	cpu1 := store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindCPU, Device: 1}
	dram1 := store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindDRAM, Device: 1}
	dram0 := store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindDRAM, Device: 0}
	mustDevices := func(s string) []query.DeviceFilter {
		d, err := query.ParseDevices(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		f    query.Filter
		want []store.SeriesKey
	}{
		{"Zero", query.Filter{}, []store.SeriesKey{gpu0, gpu1, cpu1, dram1, dram0}},
		{"AnyGPU", query.Filter{Devices: mustDevices("gpu")}, []store.SeriesKey{gpu0, gpu1}},
		{"OneGPU", query.Filter{Devices: mustDevices("gpu:1")}, []store.SeriesKey{gpu1}},
		{"CPUTakesDRAM", query.Filter{Devices: mustDevices("cpu:1")}, []store.SeriesKey{cpu1, dram1}},
		{"DRAMAlone", query.Filter{Devices: mustDevices("dram:1")}, []store.SeriesKey{dram1}},
		{"Endpoint", query.Filter{Endpoints: []string{"n2:4938"}}, []store.SeriesKey{cpu1, dram1, dram0}},
		{"Both", query.Filter{Endpoints: []string{"n1:4938"}, Devices: mustDevices("cpu,gpu:0")}, []store.SeriesKey{gpu0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []store.SeriesKey
			for _, k := range []store.SeriesKey{gpu0, gpu1, cpu1, dram1, dram0} {
				if tc.f.Match(k) {
					got = append(got, k)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("matched %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("matched %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzParseBound: no input panics ParseBound; whatever it accepts
// survives its text form (String, then UnmarshalText) unchanged, and
// surrounding whitespace never matters.
func FuzzParseBound(f *testing.F) {
	for _, tc := range parseBoundCases {
		f.Add(tc.in)
	}
	for _, in := range malformedBounds {
		f.Add(in)
	}
	for _, tc := range textBounds {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := query.ParseBound(s, parseNow, parseLoc)
		if err != nil {
			return
		}
		switch b.Kind {
		case query.BoundOmitted, query.BoundStart, query.BoundEnd:
			if b.Ms != 0 {
				t.Fatalf("ParseBound(%q) = %+v: a bound of kind %d carries a time", s, b, b.Kind)
			}
		case query.BoundTime:
		default:
			t.Fatalf("ParseBound(%q) = %+v: unknown kind", s, b)
		}
		text := b.String()
		if m, err := b.MarshalText(); err != nil || string(m) != text {
			t.Fatalf("MarshalText(%+v) = %q, %v; String = %q", b, m, err, text)
		}
		var back query.Bound
		if err := back.UnmarshalText([]byte(text)); err != nil {
			t.Fatalf("ParseBound(%q) = %+v, whose text %q does not read back: %v", s, b, text, err)
		}
		if back != b {
			t.Fatalf("ParseBound(%q) = %+v, text %q reads back as %+v", s, b, text, back)
		}
		padded, err := query.ParseBound(" \t"+s+"\n ", parseNow, parseLoc)
		if err != nil || padded != b {
			t.Fatalf("ParseBound of padded %q = %+v, %v; want %+v", s, padded, err, b)
		}
	})
}
