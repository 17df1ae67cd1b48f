// Package export writes stored readings out for other tools: Parquet (for
// pandas, polars, DuckDB and Arrow), CSV and JSON Lines, one row per
// stored device value, and an energy-conserving grid of per-bin energy
// integrated by the query rules. It reads the store through its scan API,
// one series at a time, and never writes to it; memory stays bounded by a
// row group, whatever the size of the recording. OpenRaw reads the raw
// table back, from any of its formats (for wattrec import). It does not
// log.
package export
