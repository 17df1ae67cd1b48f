package export

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ProgressBar draws an export's progress on one terminal line:
//
//	export  45% [=========>           ] 5.5M/12.3M rows  3.2s
//
// It redraws at most every Interval and draws nothing at all unless its
// writer is a terminal (a character device), so a piped or redirected
// stderr stays clean. It starts no goroutine; use its Update method as
// Options.Progress and call Finish when the export returns.
type ProgressBar struct {
	// Label precedes the bar.
	Label string
	// Interval is the least time between two redraws.
	Interval time.Duration

	w       io.Writer
	enabled bool
	now     func() time.Time
	start   time.Time
	last    time.Time
	drawn   bool
}

// NewProgressBar returns a bar that draws on w (usually os.Stderr) if w
// is a terminal, labelled label, redrawn at most ten times a second.
func NewProgressBar(w io.Writer, label string) *ProgressBar {
	return &ProgressBar{Label: label, Interval: 100 * time.Millisecond, w: w, enabled: isTerminal(w), now: time.Now}
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Update redraws the bar for done of total rows, unless the last redraw
// was less than Interval ago. A call with done == total always draws.
func (b *ProgressBar) Update(done, total int64) {
	if !b.enabled {
		return
	}
	now := b.now()
	if b.start.IsZero() {
		b.start = now
	}
	if b.drawn && now.Sub(b.last) < b.Interval && done != total {
		return
	}
	b.last, b.drawn = now, true
	fmt.Fprint(b.w, "\r"+b.render(done, total, now.Sub(b.start))+"\x1b[K")
}

// Finish ends the bar's line, if it drew one.
func (b *ProgressBar) Finish() {
	if b.enabled && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

const barWidth = 30

func (b *ProgressBar) render(done, total int64, elapsed time.Duration) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	fill := int(frac * barWidth)
	bar := strings.Repeat("=", fill)
	if fill < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	return fmt.Sprintf("%s %3d%% [%s] %s/%s rows  %.1fs", b.Label, int(frac*100), bar, count(done), count(total), elapsed.Seconds())
}

// count renders n briefly: 950, 12.3k, 5.5M.
func count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
