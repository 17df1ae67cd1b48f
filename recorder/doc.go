// Package recorder streams zeusd's server-sent power events from one or
// many endpoints, corrects their timestamps for each daemon's clock
// offset, and hands them to a store writer. Its Client is the Go
// counterpart of zeus's PowerStreamingClient.
//
// # Client
//
// A Client is given a list of Server specs (ParseServer, ParseServersFile:
// a TCP host:port or a Unix socket, each with a GPU and a CPU Selection).
// Start checks every endpoint (GET /discover, the token's scopes, the
// selections, a first clock estimate) and then runs one GPU and one CPU
// stream per endpoint, reconnecting with capped, jittered backoff. Every
// stream is seeded with get_power at each connect, because zeusd sends
// only changes. Both wire formats of zeusd are decoded (DecodeGPU,
// DecodeCPU): the per-device samples of the current daemon, and the
// snapshots of older ones.
//
// Each connection is one store.Session, and time outside sessions is a
// gap. zeusd sends no keep-alives, so an open connection that goes quiet
// is judged (Client.StallPolls, StallMin, ProbeAfter): a stalled session
// is closed at its last sign of life and the stream reconnects. Once
// Start's checks have passed, a refusal (a GPU gone after a daemon
// restart, a rejected token) is retried like a dropped connection; only a
// token past its expiry stops a stream for good (ErrTokenExpired).
//
// Timestamps are corrected by the midpoint method over GET /time round
// trips (EstimateClock), re-estimated after 5, 10, 20 and 40 s and then
// every ClockInterval. A ClockModel per endpoint fits offset and drift to
// the last 8 estimates (weighted by their error bounds, drift used once
// the estimates span long enough and clamped to MaxClockDrift, a step
// restarting the fit), and each reading is corrected with the offset the
// line predicts at the reading's own time (ClockLine.Correct: daemon time
// mapped to recorder time), not at its arrival. The store keeps every
// estimate as measured and every reading's daemon time, so the
// correction can be redone. The hardware energy counters are read at
// start, at stop, every CounterInterval and on ReadCounters.
//
// Library users read the latest values with Snapshot and Updates
// (Client.KeepLatest), after WaitFirstValues, and what each endpoint's
// checks found with Info; a program that stores everything sets Sink
// instead, which receives every observation as a store.Batch. Neither
// needs a store: only a Recorder writes one.
//
// # One-shot reads
//
// A Zeusd (DialZeusd) is the counterpart of zeus's ZeusdClient: the same
// checks as Start for one Server, then reads on request, without a
// stream: Power (get_power, mW), Energy (the hardware counters, µJ) and
// Time (the daemon's clock, ms).
//
// # Errors and the environment
//
// Start's and DialZeusd's refusals wrap sentinels to test with
// errors.Is, as zeus's exceptions are caught: ErrUnreachable
// (ZeusdConnectionError), ErrMissingDevice (the ValueError for missing
// indices, which are checked first) and ErrMissingScope
// (ZeusdCapabilityError), with ErrTokenRequired as its case that a token
// fixes.
//
// FromEnv reads ZEUSD_SOCK_PATH, ZEUSD_HOST_PORT and ZEUSD_TOKEN as zeus
// does. Nothing else in the package reads the environment or flags:
// callers parse them and fill in the exported fields.
//
// # Recorder
//
// A Recorder is the Sink that stores: one writer goroutine merges the
// client's batches and commits them to an Appender (a *store.DB) at least
// every FlushInterval, and once more, with a detached context, when it
// stops.
//
// A full disk (ENOSPC, EDQUOT) does not end the recording: the streams go
// on, their readings wait in memory, up to MaxBacklog (DefaultMaxBacklog,
// 256 MiB), and the commit is retried with capped, jittered backoff
// (MaxRetryBackoff) until space comes back; Flush meanwhile returns
// ErrDiskFull. Past MaxBacklog the oldest readings are dropped and their
// time is cut out of the stored stream sessions (DiskFullReason), so a
// query reports it as a gap. Any other store error stops Run.
//
// Other errors callers may want to explain (ErrNoServers,
// ErrTokenExpired, ErrDiskFull, ...) are sentinels too.
package recorder
