package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/tsdbtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/remotewrite"
)

// BenchmarkPush pushes the stored 24 h data set, as `wattrec push`
// does, into a receiver: "discard", an HTTP server that reads and drops
// each request (the sender's own cost: reading the file, building,
// encoding and compressing the samples), and "victoria-metrics", a local
// single-node VictoriaMetrics (skipped when it is not installed), which
// shares the machine's cores. Each iteration pushes everything from the
// start. Metrics: samples pushed (readings, re-sent held values and the
// energy counters), samples/s, seconds, requests.
func BenchmarkPush(b *testing.B) {
	ctx := context.Background()
	for _, rcv := range []string{"discard", "victoria-metrics"} {
		b.Run("span=24h/receiver="+rcv, func(b *testing.B) {
			db := mustQueryDB(b)
			var url string
			switch rcv {
			case "discard":
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusNoContent)
				}))
				defer srv.Close()
				url = srv.URL + "/api/v1/write"
			default:
				url = tsdbtest.VictoriaMetrics(b).WriteURL
			}
			var st remotewrite.Stats
			b.ResetTimer()
			for range b.N {
				s := remotewrite.New(db, remotewrite.Receiver{URL: url})
				s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
				s.Labels = []remotewrite.Label{{Name: "job", Value: "bench"}}
				if err := s.Push(ctx, query.TimeRange{From: query.At(Start.UnixMilli())}); err != nil {
					b.Fatal(err)
				}
				if st = s.Stats(); st.SkippedRequests > 0 || st.Retries > 0 {
					b.Fatalf("%+v", st)
				}
			}
			secs := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(st.Samples), "samples")
			b.ReportMetric(float64(st.Samples)/secs, "samples/s")
			b.ReportMetric(secs, "s")
			b.ReportMetric(float64(st.Requests), "requests")
		})
	}
}

// pushDB is the path of a file with the 24 h data set for a child to
// push, built on the first call.
var pushDB = sync.OnceValues(func() (string, error) {
	db, err := buildDB("push.db", false)
	if err != nil {
		return "", err
	}
	return db.Path(), db.Close()
})

// BenchmarkIngestWith is BenchmarkIngest's 24 h run three times in one
// go: as it is ("none"), with a metrics.Collector observing every
// commit (--metrics-listen), and with remote-write on: a live sender
// following the file (--remote-write; the replayed readings are stamped
// before their session, so it has little to send) and, at the same
// time, another pushing the 24 h data set from its start into a
// discarding receiver as fast as it can (a sender catching up after an
// outage: the most remote-write can take from ingest). Metrics as
// BenchmarkIngest's, and pushed-samples/s of the catching-up sender
// during the ingest.
func BenchmarkIngestWith(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, with := range []string{"none", "metrics", "remote-write"} {
		b.Run("span=24h/with="+with, func(b *testing.B) {
			spec := childSpec{Metrics: with == "metrics"}
			if with == "remote-write" {
				path, err := pushDB()
				if err != nil {
					b.Fatal(err)
				}
				spec.PushURL, spec.PushDB = srv.URL+"/api/v1/write", path
			}
			for range b.N {
				res := ingestWith(b, 24*time.Hour, spec)
				if res.PushedSamples > 0 {
					b.ReportMetric(float64(res.PushedSamples)/res.DurableSeconds, "pushed-samples/s")
				}
			}
		})
	}
}
