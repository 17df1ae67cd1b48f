// Package remotewrite pushes a wattrec file into a time-series database
// that speaks the Prometheus remote-write protocol 1.0 (protobuf and
// snappy): VictoriaMetrics, Prometheus with its remote-write receiver,
// Mimir, Thanos. The file is the write-ahead log: a Sender reads it
// behind the recorder and keeps its position in it, so that a receiver
// that is down, or a recorder restart, loses nothing.
//
// # What is pushed
//
// Each series (endpoint, kind, device) becomes two metrics, with the
// labels endpoint, kind and device and those of Sender.Labels:
//
//   - wattrec_power_watts, the value that holds, as the steps of
//     query.Steps: a sample where each reading's value starts to hold
//     (its corrected time; for CPU and DRAM, whose values average the
//     poll period before their time, the start of that period), the held
//     value again every Sender.Every while it holds (a flat GPU sends
//     nothing for minutes; Prometheus and VictoriaMetrics would drop the
//     series after 5 minutes of silence), and a Prometheus staleness
//     marker where a gap begins (the stream session ended): PromQL sees
//     a value exactly where wattrec counts one, and none in a gap.
//     Readings of the same millisecond make one sample, the last.
//   - wattrec_energy_joules_total, a counter: the exact integral of those
//     steps since the recording began, where the series starts after a
//     gap, at each multiple of Every while it has a value, and where a
//     gap begins. It never decreases, also across gaps and recorder
//     restarts, so increase() over a window whose edges are samples of
//     it (multiples of Every while covered) gives the joules wattrec
//     reports for that window.
//
// # Delivery
//
// A push goes window by window in time order over all series (so that
// Prometheus, which refuses samples older than the newest by more than
// an hour, takes a backfill), in requests of at most Sender.MaxSamples
// samples. The position advances past a window only once each of its
// requests got a 2xx, or a 4xx other than 429, which no retry would
// cure: that request is skipped and logged. Network errors, 5xx and 429
// are retried with capped, jittered backoff. A live push stays
// Sender.Lag behind each live session's last commit.
package remotewrite
