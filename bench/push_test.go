package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

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
