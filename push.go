package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/remotewrite"
	"github.com/wattrec/wattrec/store"
)

// remoteWriteFlags are the remote-write flags of record, run and push.
func remoteWriteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "remote-write", Usage: "push every reading and the energy counters to this Prometheus remote-write `URL` (VictoriaMetrics, Prometheus, Mimir: e.g. http://vm:8428/api/v1/write; repeatable)"},
		&cli.StringSliceFlag{Name: "remote-write-header", Usage: "add this `NAME=VALUE` header to every remote-write request (repeatable)"},
		&cli.PathFlag{Name: "remote-write-bearer-token-file", Usage: "`FILE` holding a bearer token for the remote-write receivers, readable by its owner only"},
		&cli.DurationFlag{Name: "remote-write-interval", Value: remotewrite.DefaultEvery, Usage: "send a held value (and the energy counter) again this often, so that a flat series never goes stale (" + remotewrite.MinEvery.String() + " to " + remotewrite.MaxEvery.String() + ")"},
		&cli.StringSliceFlag{Name: "label", Usage: "add this `NAME=VALUE` label to every series pushed, e.g. job=train or cluster=a (repeatable)"},
	}
}

// metricsListenFlag is record's and run's --metrics-listen.
func metricsListenFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics on http://`ADDR`/metrics, e.g. 127.0.0.1:9464 (a bare port listens on 127.0.0.1 only); off by default"}
}

// metricsListener listens on --metrics-listen, or returns nil without
// it.
func metricsListener(c *cli.Context) (net.Listener, error) {
	addr := c.String("metrics-listen")
	if addr == "" {
		return nil, nil
	}
	if !strings.Contains(addr, ":") {
		addr = "127.0.0.1:" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	return ln, nil
}

// senders builds one remote-write sender per --remote-write, on db
// once it is open (set their DB), from the remote-write flags. It reads
// the token file; the token never reaches a log.
func senders(c *cli.Context, log *slog.Logger) ([]*remotewrite.Sender, error) {
	urls := c.StringSlice("remote-write")
	if len(urls) == 0 {
		for _, f := range []string{"remote-write-header", "remote-write-bearer-token-file", "label"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s without --remote-write", f)
			}
		}
		return nil, nil
	}
	if d := c.Duration("remote-write-interval"); d < remotewrite.MinEvery || d > remotewrite.MaxEvery {
		return nil, fmt.Errorf("--remote-write-interval %v: want %v to %v", d, remotewrite.MinEvery, remotewrite.MaxEvery)
	}
	header := http.Header{}
	for _, kv := range c.StringSlice("remote-write-header") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " :\t") {
			return nil, fmt.Errorf("--remote-write-header %q: want NAME=VALUE", kv)
		}
		header.Add(k, v)
	}
	var labels []remotewrite.Label
	for _, kv := range c.StringSlice("label") {
		k, v, ok := strings.Cut(kv, "=")
		l := remotewrite.Label{Name: k, Value: v}
		if !ok {
			return nil, fmt.Errorf("--label %q: want NAME=VALUE", kv)
		}
		if err := remotewrite.CheckLabel(l); err != nil {
			return nil, fmt.Errorf("--label: %w", err)
		}
		labels = append(labels, l)
	}
	var tok string
	if path := c.Path("remote-write-bearer-token-file"); path != "" {
		var err error
		if tok, err = readSecret("--remote-write-bearer-token-file", path); err != nil {
			return nil, err
		}
	}
	var out []*remotewrite.Sender
	seen := map[string]bool{}
	for _, u := range urls {
		s := remotewrite.New(nil, remotewrite.Receiver{URL: u, Header: header, BearerToken: tok})
		s.Labels = labels
		s.Every = c.Duration("remote-write-interval")
		s.Logger = log
		if err := s.Check(); err != nil {
			return nil, fmt.Errorf("--remote-write: %w", err)
		}
		if id := s.Receiver.ID(); seen[id] {
			return nil, fmt.Errorf("--remote-write %s given twice", id)
		}
		seen[s.Receiver.ID()] = true
		out = append(out, s)
	}
	return out, nil
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a recording into a Prometheus remote-write receiver (VictoriaMetrics, Prometheus, Mimir)",
		UsageText: "wattrec push --db run.db --remote-write http://vm:8428/api/v1/write --label job=train",
		Description: `Pushes every reading of the file as a sample of wattrec_power_watts (the held
value again every --remote-write-interval, a staleness marker at each gap) and the
exact energy of each series as the counter wattrec_energy_joules_total, the way
wattrec record --remote-write does while it records. The file keeps how far each
receiver got: a push goes on from there (a new receiver: from the start), so an
interrupted push loses nothing when run again. --from starts afresh at that time.
Failures other than a 4xx are retried until interrupted; a request refused with a
4xx (other than 429) is logged and skipped.`,
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "from", Usage: "start `TIME` (default: where the last push to the receiver stopped); see wattrec query --help"},
			&cli.StringFlag{Name: "to", Usage: "end `TIME` (exclusive; default: the end of the recording)"},
			logLevelFlag(""),
		}, remoteWriteFlags()...),
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			ss, err := senders(c, log)
			if err != nil {
				return err
			}
			if len(ss) == 0 {
				return errors.New("push: give the receiver with --remote-write URL")
			}
			var r query.TimeRange
			now := time.Now()
			if r.From, err = query.ParseBound(c.String("from"), now, time.Local); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if r.To, err = query.ParseBound(c.String("to"), now, time.Local); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			path, err := dbPath(c)
			if err != nil {
				return err
			}
			db, err := store.Open(path, store.Options{MustExist: true})
			if err != nil {
				return err
			}
			defer db.Close()
			for _, s := range ss {
				s.DB = db
				began := time.Now()
				err := s.Push(c.Context, r)
				st := s.Stats()
				if st.ThroughMs == math.MinInt64 {
					fmt.Fprintf(c.App.Writer, "%s: nothing to push\n", s.Receiver.ID())
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s: %d samples in %d requests in %v, through %s", s.Receiver.ID(), st.Samples, st.Requests,
					time.Since(began).Round(time.Millisecond), query.FormatTime(st.ThroughMs))
				if st.SkippedRequests > 0 {
					fmt.Fprintf(c.App.Writer, "; %d requests (%d samples) refused and skipped", st.SkippedRequests, st.SkippedSamples)
				}
				fmt.Fprintln(c.App.Writer)
				if err != nil {
					return fmt.Errorf("push to %s: %w", s.Receiver.ID(), err)
				}
			}
			return nil
		},
	}
}
