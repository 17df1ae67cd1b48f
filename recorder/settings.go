package recorder

import (
	"fmt"
	"strconv"
	"time"

	"github.com/wattrec/wattrec/retry"
)

// Limits of the Client and Recorder settings: Start and Run refuse a
// value outside them with a *SettingError.
const (
	// MinInterval is the shortest flush, clock and counter interval
	// (zero turns the clock and counter intervals off): a shorter one
	// would keep the recorder busy with itself.
	MinInterval = 10 * time.Millisecond
	// MinMaxBackoff is the smallest MaxBackoff: reconnecting faster
	// only hammers a daemon that is down.
	MinMaxBackoff = retry.MinLimit
	// MinClockSamples and MaxClockSamples bound ClockSamples: fewer
	// round trips give no reliable minimum, more only delay the start.
	MinClockSamples = 5
	MaxClockSamples = 100
	// MinMemoryLimit is the smallest MemoryLimit (zero leaves the
	// runtime's own): below it the collector would hardly ever pause.
	MinMemoryLimit = 8 << 20
)

// SettingError is a Client or Recorder setting outside its limits. It
// matches ErrSetting.
type SettingError struct {
	Setting string // the field, e.g. "MaxBackoff"
	Value   any
	Want    string // the limits, e.g. "at least 100ms"
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s %v: want %s", e.Setting, e.Value, e.Want)
}

// Unwrap returns ErrSetting.
func (e *SettingError) Unwrap() error { return ErrSetting }

// Check returns a *SettingError for the first setting of c outside its
// limits, or nil. Start calls it.
func (c *Client) Check() error {
	switch {
	case c.ClockSamples < MinClockSamples || c.ClockSamples > MaxClockSamples:
		return &SettingError{"ClockSamples", c.ClockSamples, fmt.Sprintf("%d to %d", MinClockSamples, MaxClockSamples)}
	case c.ClockInterval != 0 && c.ClockInterval < MinInterval:
		return &SettingError{"ClockInterval", c.ClockInterval, "0 (off) or at least " + MinInterval.String()}
	case c.CounterInterval != 0 && c.CounterInterval < MinInterval:
		return &SettingError{"CounterInterval", c.CounterInterval, "0 (off) or at least " + MinInterval.String()}
	case c.MaxBackoff < MinMaxBackoff:
		return &SettingError{"MaxBackoff", c.MaxBackoff, "at least " + MinMaxBackoff.String()}
	case c.RequestTimeout <= 0:
		return &SettingError{"RequestTimeout", c.RequestTimeout, "more than 0"}
	}
	return nil
}

// mebibytes formats a byte count as MiB for a SettingError.
func mebibytes(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + "MiB" }

// Check returns a *SettingError for the first setting of r or its
// Client outside its limits, or nil. Run calls it.
func (r *Recorder) Check() error {
	switch {
	case r.FlushInterval < MinInterval:
		return &SettingError{"FlushInterval", r.FlushInterval, "at least " + MinInterval.String()}
	case r.BatchSize < 1:
		return &SettingError{"BatchSize", r.BatchSize, "at least 1"}
	case r.MemoryLimit < 0 || r.MemoryLimit > 0 && r.MemoryLimit < MinMemoryLimit:
		return &SettingError{"MemoryLimit", mebibytes(r.MemoryLimit), fmt.Sprintf("0 (the runtime's own) or at least %s", mebibytes(MinMemoryLimit))}
	}
	return r.Client.Check()
}
