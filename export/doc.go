// Package export writes stored readings out for other tools: JSON Lines
// now, Parquet and CSV later. It reads the store through its scan API and
// never writes to it.
package export
