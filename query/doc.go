// Package query turns a wattrec store into energy: it integrates each
// series' power readings exactly (integer mW × ms) by the integration
// rules (rule.go holds them and their one wording), inside the stream
// sessions the readings arrived in, over a window or buckets of it, and
// reports joules with their coverage, gaps and the hardware counter
// check. It also resolves the time windows and device filters users
// type, and writes the info summary of a file. It never writes to the
// store and does not log.
package query
