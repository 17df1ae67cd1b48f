// Package store keeps everything wattrec records in one bbolt file: power
// readings per series, hardware energy counter readings, stream sessions,
// clock estimates and per-endpoint metadata. It imports only bbolt and the
// standard library and does not log.
//
// # Basics
//
// A series is (endpoint, kind, device); kind is gpu, cpu or dram. One
// writer (the recorder) calls [DB.Write] once per batch: one bbolt
// transaction, fsynced on commit. Readers scan one series in corrected-time
// order with [DB.Scan], and a series' energy counter readings with
// [DB.Counters] and [DB.CounterBracket]. Every value starts with a version
// byte; a format change bumps it and old bytes are never reinterpreted.
//
// # Bucket tree
//
//	meta/                         format  -> [1]byte{formatVersion}
//	                              created -> 8-byte BE Unix ms
//	runs/                         8-byte BE sequence -> v1 | JSON(Run)
//	marks/                        8-byte BE mark id -> v1 | JSON(Mark)   (named windows)
//	endpoints/
//	  <endpoint identity>/        "host:port" or the socket path, as typed
//	    info                      -> v1 | JSON(EndpointInfo)    (latest /discover etc.)
//	    series/
//	      <kind:1><device:4 BE>/  one bucket per series, readings (below)
//	    sessions/                 key: start ms (8, sign-flipped BE) | stream (1)
//	                              value: v1 | Session (below)
//	    clock/                    key: taken ms (8, sign-flipped BE) | seq (8 BE)
//	                              value: v1 | ClockEstimate (below)
//	    counters/                 key: kind (1) | device (4 BE) | taken ms (8, sign-flipped BE) | dup (2 BE)
//	                              value: v1 | CounterReading (below)
//
// Kind bytes: 1 gpu, 2 cpu, 3 dram. Stream bytes: 1 gpu, 2 cpu.
// "Sign-flipped BE" is the int64 as big-endian bytes with bit 63 flipped,
// so that byte order is numeric order, negative times included.
//
// # Reading keys and values (format 1)
//
//	key   = time ms (8, sign-flipped BE, clock-corrected) | dup (2 BE)
//	value = 0x01 | flags (1) | milliwatts (uvarint) | daemon ms − time ms (zigzag varint)
//
// flags bit 0: seed (taken with get_power at a (re)connect, not streamed).
// Other flag bits must be zero. The corrected time is in the key; the
// daemon's own timestamp is kept beside it, so the correction is a view
// that can be recomputed, not a rewrite.
//
// Duplicate policy: readings of one series with the same corrected time
// share the 8-byte prefix. A reading whose value bytes equal a stored value
// under that prefix is an identical replay and is skipped. A different
// value gets the next free dup index (0, 1, 2, ...), so two different events
// at the same millisecond are both kept, in arrival order.
//
// # Session values
//
//	0x01 | flags (1) | end ms (zigzag varint, relative to start)
//	     | events (uvarint) | malformed (uvarint) | reason length (uvarint) | reason
//
// flags bit 0: open (the stream was live at the last commit; end is the
// time of that commit). A recorder killed with -9 leaves the session open
// with end = its last flush, which is as far as anyone knows it was live.
//
// # Counter readings
//
//	key   = kind (1) | device (4 BE) | taken ms (8, sign-flipped BE) | dup (2 BE)
//	value = 0x01 | trigger (1) | energy µJ (uvarint) | rtt µs (uvarint)
//
// One flat bucket per endpoint holds the readings of zeusd's
// get_cumulative_energy for all its series: the key starts with the
// series, so one series is one contiguous key range in time order, and
// "the last reading at or before t" and "the first at or after t" are one
// cursor seek each ([DB.CounterBracket]). Counter readings are few (one
// per device every few seconds), so they do not get a bucket per series.
//
// Taken ms is the recorder's clock, the clock of corrected reading times,
// at the midpoint of the request's send and receive; rtt bounds the error
// to ±rtt/2. The daemon's answer carries no timestamp, so there is no
// daemon time to keep beside it. Energy is µJ from the counter's own
// origin: a GPU's energy_mj × 1000 (1 mJ resolution), a CPU package's
// cpu_energy_uj, a DRAM domain's dram_energy_uj. Only the difference of
// two readings of one series is meaningful, and only while the counter
// did not restart (driver reload, daemon restart): a decrease means it
// did.
//
// Trigger bytes: 1 start, 2 periodic, 3 mark, 4 stop.
//
// The bucket is an addition to format 1, not a change: files without it
// read as having no counter readings, and builds that predate it never
// look at it.
//
// Duplicate policy: as for readings, per series and millisecond. An
// identical value under the same 13-byte prefix is a replay and is
// skipped; a different one gets the next dup index, in arrival order.
//
// # Clock estimate values
//
//	0x01 | offset µs (zigzag varint) | rtt µs (uvarint) | samples (uvarint)
//
// corrected time = daemon time + offset. A positive offset means the
// daemon's clock is behind the recorder's.
package store
