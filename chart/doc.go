// Package chart draws a recording: the power timeline of its series
// (Write: one line per series or group, watts over time, the marks
// shaded and labelled, gaps drawn as breaks over a band, a legend with
// each line's exact joules and coverage) and the energy of a window's
// instances as bars (Bars), as SVG or PNG through
// gonum.org/v1/plot.
//
// # Downsampling
//
// A timeline draws one column per pixel. Each column holds the exact
// mean of the series' steps in it (query.Steps, the steps that query
// integrates) and the range of their values, so a burst shorter than a
// pixel still reaches its height in the envelope, and the mean line
// shows what the energy is made of. The legend's joules and coverage
// come from query.Energy over the plotted window, never from the
// columns. A line that sums several series (--by endpoint, kind or
// total) draws the sum of their means, and an envelope between the sums
// of their minima and maxima: it bounds the sum.
//
// # Gaps
//
// A line is broken wherever one of its series has no value (a
// disconnection, the start of a session before its first reading, the
// window outside the recording), at the gap's exact time, and every gap
// of any line is shaded, at least two pixels wide, so that a gap of a
// second in a day still shows.
package chart
