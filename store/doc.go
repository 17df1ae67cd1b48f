// Package store is wattrec's database: one bbolt file that holds power
// readings per series, hardware energy counter readings, stream sessions,
// clock estimates, marks and per-endpoint metadata. It imports only bbolt
// and the standard library and does not log.
//
// # Basics
//
// A series is (endpoint, kind, device); kind is gpu, cpu or dram. One
// writer (the recorder) calls [DB.Write] once per batch: one bbolt
// transaction, fsynced on commit. Readers scan one series in corrected-time
// order with [DB.Scan] (or chunk by chunk with [DB.ScanChunks]), and a
// series' energy counter readings with [DB.Counters]. Marks, the named windows of a recording, are begun,
// ended and added with [DB.BeginMark], [DB.EndMark] and [DB.AddMark], each
// in one transaction, and listed with [DB.Marks].
//
// # Damaged files
//
// bbolt maps the file into memory and trusts it: reading a page past the
// end of a truncated file faults (SIGBUS), and a damaged page makes it
// panic; it follows page ids and offsets blindly, so a damaged one sends
// it to any address. The store does not pass that on. [Open] reads the
// meta pages itself, refuses a file shorter than the pages they count,
// and walks the whole page tree before bbolt reads a page of it (which
// also keeps a write from spreading damage). Every method that touches
// pages runs under a guard (guard.go), for what Open cannot see (a file
// truncated while open): a memory fault or a panic of bbolt becomes an
// error that wraps [ErrCorrupt], with the series, bucket or key it was
// reading.
//
// [CheckFile] and [Repair] read a file page by page with ReadAt and
// checked offsets (pages.go), without bbolt, and interpret the bucket
// tree below from those pages (tree.go): they see the same records and
// the same damage, and a damaged page, record or chunk costs only
// itself. CheckFile reports every problem; Repair copies every record and
// chunk that decodes into a new file and reports the rest as [Loss]es.
// bbolt keeps no page checksums, so a flipped bit inside a value that
// still decodes goes unseen; a chunk's sums, last reading and padding
// catch nearly every damaged reading.
//
// # Layout version
//
// meta/format holds the layout version, 2: each series' readings in
// compressed chunks of up to 2016 bytes (about a thousand readings), as
// described below. Open refuses a file of any other version with
// [ErrFormat]. Every value also starts with a version byte: 0x02 for
// chunks and series stats, 0x01 (v1 below) for the values whose encoding
// has not changed since the first layout. The version bytes guard against
// misreading: a change of encoding bumps its byte, and old bytes are never
// reinterpreted.
//
// # Bucket tree
//
//	meta/                         format  -> [1]byte{2}
//	                              created -> 8-byte BE Unix ms
//	runs/                         8-byte BE sequence -> v1 | JSON(Run)
//	marks/                        8-byte BE mark id -> v1 | JSON(Mark)   (named windows;
//	                              the bucket's sequence is at least every id stored)
//	endpoints/
//	  <endpoint identity>/        "host:port" or the socket path, as typed
//	    info                      -> v1 | JSON(EndpointInfo)    (latest /discover etc.)
//	    series/
//	      <kind:1><device:4 BE>/  one bucket per series: its chunks (below)
//	    stats/                    key <kind:1><device:4 BE> -> series stats (below)
//	    sessions/                 key: start ms (8, sign-flipped BE) | stream (1)
//	                              value: v1 | Session (below)
//	    clock/                    key: taken ms (8, sign-flipped BE) | seq (8 BE)
//	                              value: v1 | ClockEstimate (below)
//	    counters/                 key: kind (1) | device (4 BE) | taken ms (8, sign-flipped BE) | dup (2 BE)
//	                              value: v1 | CounterReading (below)
//	push/                         <receiver> -> v1 | PushPosition (below)
//
// Kind bytes: 1 gpu, 2 cpu, 3 dram. Stream bytes: 1 gpu, 2 cpu.
// "Sign-flipped BE" is the int64 as big-endian bytes with bit 63 flipped,
// so that byte order is numeric order, negative times included.
//
// # Reading chunks
//
// A series bucket holds the series' readings, in corrected-time order (ties
// in arrival order), cut into chunks:
//
//	key   = corrected time of the chunk's first reading (8, sign-flipped BE)
//	value = header | body
//
// Chunks partition the series: a chunk holds the readings from its key up
// to (not including) the next chunk's key. All readings of one
// millisecond are in one chunk. A chunk ends before its value would
// exceed 2016 bytes or 4096 readings (two full chunks and their keys fill
// a 4 KiB page), except that a run of readings of one millisecond is never
// cut. The last chunk of a series, the head, is rewritten by every commit
// that adds to it; the others change only when a reading arrives out of
// order (it is inserted and the chunk re-encoded, and split if it grew too
// big).
//
// Header, in order (uvarint/varint as in encoding/binary):
//
//	0x02                  version
//	flags (1)             bit 0: parameters fitted to this chunk (a full head is
//	                      sealed, not refitted); bit 1: time codes are
//	                      delta-of-delta; bit 2: pair sums present; bit 3:
//	                      swing present (set with bit 2; chunks written before
//	                      the swing existed have bit 2 alone). Others zero.
//	n (uvarint)           readings, >= 1
//	span (uvarint)        last corrected time − first (the key)
//	d0 (varint)           daemon ms − corrected ms of the first reading
//	firstMW (uvarint)     milliwatts of the first reading
//	lastMW (uvarint)      milliwatts of the last reading
//	unit (uvarint)        daemon-time deltas are multiples of unit (>= 1)
//	mode (varint)         the predicted daemon-time delta, in units
//	kt (1), kv (1)        Rice parameters of the time and value codes (<= 56)
//	if bit 2:
//	  hold (uvarint)      Σ mw_i·(t_{i+1} − t_i) over consecutive readings (mW·ms)
//	  trap2 (uvarint)     Σ (mw_i + mw_{i+1})·(t_{i+1} − t_i)
//	  peak+1 (uvarint)    largest mw_i with t_{i+1} > t_i, plus one (0: none)
//	  if bit 3:
//	    swing (uvarint)   Σ |mw_{i+1} − mw_i| over consecutive readings (mW)
//	m (uvarint)           changes of d = daemon − corrected time, then m times:
//	  index step (uvarint), d step (varint)   (from index 0 and d0)
//	s (uvarint)           seed readings, then s times:
//	  index − previous index − 1 (uvarint)    (previous starts at −1)
//
// The body is a bit stream, little-endian (the first bit is bit 0 of the
// first byte), zero-padded to a byte. For each reading i = 1..n−1:
//
//	time code:  z = zigzag(x_i − mode), or zigzag(x_i − x_{i−1}) with the
//	            delta-of-delta flag (x_0 = mode), where
//	            x_i = (daemon_i − daemon_{i−1}) / unit
//	value code: z = zigzag(mw_i − mw_{i−1})
//
// each Rice-coded: with parameter k, q = z>>k; if q < 6: q one bits, a zero
// bit, the k low bits of z; else 6 one bits, bitlen(z)−1 in 6 bits, then
// bitlen(z) bits of z. Arithmetic on times wraps like Go's int64. A reading
// i's daemon time is daemon_{i−1} + x_i·unit, its d is d0 or the last change
// at or before i, its corrected time daemon − d, its seed flag whether i
// is in the seed list.
// A seed reading was taken with get_power at a (re)connect, not streamed.
// The daemon's own timestamp is kept beside the corrected time, so the
// clock correction is a view that can be recomputed, not a rewrite.
//
// Daemon times sit on the daemon's poll grid, so the unit is the poll
// period (50 ms at 20 Hz) and a change-only stream's delta is mostly one
// unit: about one bit. d only changes when the clock offset estimate does.
// The value code takes the rest, about 12 bits for a GPU's ±1 W jitter.
// When a head first fills up, the writer refits its parameters and
// re-encodes it if they changed (then keeps filling it): every 16th chunk
// of a series all of them (unit, mode, the delta-of-delta flag, both Rice
// parameters) from its readings, the chunks in between only the Rice
// parameters, from histograms of the codes' bit lengths. The next chunk
// starts with the parameters of the last. A reading whose daemon-time
// delta is not a multiple of the unit makes the head refit at once.
//
// The pair sums let an integral skip decoding a chunk that lies inside its
// window and one stream session ([DB.ScanChunks], query's fast path); the
// swing does the same for the integral's error bound, which grows with
// every change of value.
//
// Duplicate policy: a reading equal in corrected time, daemon time and
// milliwatts to a stored reading of its series is the same reading and is
// skipped: an identical replay, or the first streamed event that repeats
// the get_power seed of its connect (the stored reading keeps its seed
// flag, so a seed and its streamed twin are one row of every export). A different reading of the same
// millisecond is kept after the ones already stored, so two different
// events at the same millisecond are both kept, in arrival order (at most
// 65,536 per series and millisecond; a batch with more fails). The writer
// keeps the head's readings of its last millisecond in memory, so the usual
// replay (of the newest readings) costs no read. A reading that sorts
// before the head's last (late: a replay of older readings, a daemon clock
// stepped back) waits for the end of its batch; then the late readings of
// a series are sorted by time, stably, and merged into the chunks that
// hold their times, each chunk decoded, checked for replays and re-encoded
// once per batch. Sequentially or merged, the result is the same: a late
// reading goes after the readings of its millisecond already stored.
//
// Milliwatts are at most 2^62 (Write refuses more), so that the sum of two
// fits an int64.
//
// # Series stats
//
//	0x02 | n (uvarint) | seeds (uvarint) | first ms (varint) | last − first (uvarint)
//	     | min mW (uvarint) | max mW (uvarint)
//
// Kept up to date by every commit that adds readings, so that
// [DB.Series] reads no chunk.
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
// the readings of a window are one cursor seek and a short walk
// ([DB.Counters]). Counter readings are few (one
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
// The bucket was added without a change of layout version: a file
// without it has no counter readings, and builds that predate it never
// look at it.
//
// Duplicate policy: as for readings, per series and millisecond. An
// identical value under the same 13-byte prefix is a replay and is
// skipped; a different one gets the next dup index, in arrival order.
//
// # Push positions
//
// Push positions, one per remote-write receiver (its URL without
// credentials or query), say how far the file's samples were pushed
// there and acknowledged ([DB.SetPushPosition]):
//
//	0x01 | through ms (8, sign-flipped BE) | n (uvarint) | n × series
//	series = endpoint length (uvarint) | endpoint | kind (1) | device (4 BE)
//	         | flags (1) | energy µJ (uvarint) | mW (uvarint)
//
// Series are sorted by endpoint, kind, device. Energy is the value of
// the series' energy counter as pushed, at through; flags bit 0 (live)
// says the series had a value just before through, and mW is then the
// value of its last power sample pushed (zero otherwise). The bucket was added
// without a change of layout version: a file without it has pushed
// nothing; builds that predate it read the file as before, and only
// their check reports the bucket as not part of the layout. [CheckFile]
// checks the values; [Repair] leaves them behind, so a repaired file
// pushes from its start again.
//
// # Clock estimate values
//
//	0x01 | offset µs (zigzag varint) | rtt µs (uvarint) | samples (uvarint)
//
// corrected time = daemon time + offset. A positive offset means the
// daemon's clock is behind the recorder's.
package store
