// Package importer brings data into wattrec files: Import reads
// wattrec's own exports (Parquet, CSV, JSON Lines) and CSV or JSON Lines
// files with the import columns back into a recording, and Merge
// combines recordings, per node for instance, into one. Both refuse the
// same endpoint at overlapping times in two sources, and both write a
// new file atomically (a temp file, checked page by page, renamed into
// place), so a failed or interrupted run leaves nothing behind. They
// read and write in batches: memory stays bounded whatever the size of
// the inputs. The package does not log.
//
// A value holds only inside a live stream session (see query's rules),
// so imported readings need sessions: a wattrec Parquet export carries
// its own; for other files the observed span is declared (Options).
package importer

import "errors"

// Errors of Import and Merge. Callers test them with errors.Is.
var (
	// ErrOverlap means the same endpoint is in two sources at
	// overlapping times. The message names the endpoint, both sources
	// and both spans.
	ErrOverlap = errors.New("the same endpoint overlaps in time")
	// ErrNoSessions means a file carries no stream sessions and its
	// observed span was not declared.
	ErrNoSessions = errors.New("no stream sessions")
	// ErrOutside means a reading lies outside the observed span declared
	// for its file.
	ErrOutside = errors.New("a reading outside the observed span")
	// ErrOrder means a device's readings go back in time, so the gaps
	// between them cannot be told.
	ErrOrder = errors.New("readings out of time order")
)
