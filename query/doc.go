// Package query reads a wattrec store back: the info summary, and the
// parsing of the times and device filters users type. It never writes to
// the store and does not log.
package query
