// Package control is the transport of a running recorder's local API:
// HTTP over a Unix socket next to the database file (FILE.sock, mode
// 0600), versioned (/v1/) with the JSON types of wire.go. A recorder
// owns its bbolt file, so read commands (query, export, plot, report,
// info) and marks reach the data through it while it runs. Server
// serves a Backend; Client has the Backend's methods and maps the
// recorder's errors back to the sentinels they carried (errors.Is holds
// through the socket).
package control

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// Errors of the control client.
var (
	// ErrNoRecorder means no recorder answers on the file's control socket.
	ErrNoRecorder = errors.New("no running recorder")
	// ErrAPIVersion means the recorder speaks another version of the API.
	ErrAPIVersion = errors.New("control API version mismatch")
	// ErrBusy means the recorder is answering as many reads as it takes at
	// once, and another did not finish in time.
	ErrBusy = errors.New("the recorder is busy answering other reads")
)

// Backend is what a Server serves: the running recorder's view of its
// file. Client has the same methods, so a caller can use either.
type Backend interface {
	Query(ctx context.Context, w io.Writer, opt query.Options) error
	Export(ctx context.Context, w io.Writer, req export.Request) error
	Plot(ctx context.Context, w io.Writer, req chart.Request) error
	Report(ctx context.Context, w io.Writer, req report.Request) error
	Info(ctx context.Context, w io.Writer, format string) error
	Marks(ctx context.Context, name string) ([]store.Mark, error)
	Mark(ctx context.Context, req MarkRequest) (store.Mark, error)
}

// Server serves Backend on a Unix socket, in the wire format of wire.go.
type Server struct {
	Backend Backend
	DB      string // the file's path, for the ping answer
	Logger  *slog.Logger
	// WriteTimeout cuts off a client that takes no bytes of an answer for
	// this long (zero: DefaultWriteTimeout), so that a paused reader holds
	// nothing for long.
	WriteTimeout time.Duration
	// MaxReads bounds the queries, exports, plots, reports and info
	// summaries answered at once, and so the memory they take (zero: DefaultMaxReads). Another
	// waits up to QueueTimeout (zero: DefaultQueueTimeout), then is
	// answered ErrBusy.
	MaxReads     int
	QueueTimeout time.Duration

	reads chan struct{}
}

// Default limits of a Server.
const (
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxReads     = 2
	DefaultQueueTimeout = 10 * time.Second
)

// Serve answers on ln (see Listen) until ctx is done, then stops, waits
// for running requests and closes ln, which removes the socket.
func (s *Server) Serve(ctx context.Context, ln *Listener) error {
	var err error
	s.reads = make(chan struct{}, cmp.Or(s.MaxReads, DefaultMaxReads))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, PingResponse{API: APIVersion, DB: s.DB, PID: os.Getpid()})
	})
	mux.HandleFunc("POST /v1/query", s.stream(func(ctx context.Context, w io.Writer, body []byte, trailer http.Header) error {
		var req QueryRequest
		if err := decode(body, &req); err != nil {
			return err
		}
		opt := req.options()
		var warnings warningLines
		opt.Warnings = &warnings
		if err := s.Backend.Query(ctx, w, opt); err != nil {
			return err
		}
		js, err := json.Marshal(warnings.lines)
		if err != nil {
			return err
		}
		trailer.Set(warningsTrailer, string(js))
		return nil
	}))
	mux.HandleFunc("POST /v1/export", s.stream(decoded[ExportRequest](s.Backend.Export)))
	mux.HandleFunc("POST /v1/plot", s.stream(decoded[PlotRequest](s.Backend.Plot)))
	mux.HandleFunc("POST /v1/report", s.stream(decoded[ReportRequest](s.Backend.Report)))
	mux.HandleFunc("POST /v1/info", s.stream(func(ctx context.Context, w io.Writer, body []byte, _ http.Header) error {
		var req InfoRequest
		if len(body) > 0 {
			if err := decode(body, &req); err != nil {
				return err
			}
		}
		return s.Backend.Info(ctx, w, req.Format)
	}))
	mux.HandleFunc("POST /v1/marks", func(w http.ResponseWriter, r *http.Request) {
		var req MarkRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err == nil {
			err = decode(body, &req)
		}
		var m store.Mark
		if err == nil {
			m, err = s.Backend.Mark(r.Context(), req)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("GET /v1/marks", func(w http.ResponseWriter, r *http.Request) {
		marks, err := s.Backend.Marks(r.Context(), r.URL.Query().Get("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		if marks == nil {
			marks = []store.Mark{}
		}
		writeJSON(w, http.StatusOK, marks)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-done:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if err == nil {
		err = <-done
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, serr, ln.remove())
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// decode reads a request body into v; anything that does not decode is
// a bad request.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return query.Invalid("request body: %v", err)
	}
	return nil
}

// stream adapts a writer function to a handler: errors before the first
// byte become a status and an ErrorResponse; later ones travel in the
// trailers.
// wireRequest is a request as it travels, which converts to the
// Backend's request R.
type wireRequest[R any] interface{ request() R }

// decoded is a stream handler that decodes the body as a W and calls
// call with its Backend request.
func decoded[W wireRequest[R], R any](call func(context.Context, io.Writer, R) error) func(context.Context, io.Writer, []byte, http.Header) error {
	return func(ctx context.Context, w io.Writer, body []byte, _ http.Header) error {
		var req W
		if err := decode(body, &req); err != nil {
			return err
		}
		return call(ctx, w, req.request())
	}
}

func (s *Server) stream(fn func(ctx context.Context, w io.Writer, body []byte, trailer http.Header) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeError(w, query.Invalid("request body: %v", err))
			return
		}
		if err := s.acquire(r.Context()); err != nil {
			writeError(w, err)
			return
		}
		defer func() { <-s.reads }()
		w.Header().Set("Trailer", errorTrailer+", "+errorCodeTrailer+", "+warningsTrailer)
		lw := &lazyWriter{w: w, rc: http.NewResponseController(w), timeout: cmp.Or(s.WriteTimeout, DefaultWriteTimeout)}
		defer lw.rc.SetWriteDeadline(time.Time{}) // the connection may serve another request
		if err := fn(r.Context(), lw, body, w.Header()); err != nil {
			if !lw.started {
				w.Header().Del("Trailer")
				writeError(w, err)
				return
			}
			_, code := classify(err)
			w.Header().Set(errorTrailer, err.Error())
			w.Header().Set(errorCodeTrailer, code)
			if s.Logger != nil {
				s.Logger.Warn("control request failed mid-answer", "path", r.URL.Path, "err", err)
			}
		}
	}
}

// acquire takes one of the read slots, waiting up to the queue timeout.
func (s *Server) acquire(ctx context.Context) error {
	wait := time.NewTimer(cmp.Or(s.QueueTimeout, DefaultQueueTimeout))
	defer wait.Stop()
	select {
	case s.reads <- struct{}{}:
		return nil
	case <-wait.C:
		return fmt.Errorf("%w (%d at once)", ErrBusy, cap(s.reads))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lazyWriter records whether anything was written yet, and gives each
// write a deadline: a client that stops reading is cut off.
type lazyWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.started = true
	}
	l.rc.SetWriteDeadline(time.Now().Add(l.timeout))
	n, err := l.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("the client stopped reading (cut off after %v): %w", l.timeout, err)
	}
	return n, nil
}

func writeError(w http.ResponseWriter, err error) {
	status, code := classify(err)
	writeJSON(w, status, ErrorResponse{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// warningLines collects the warning lines a query writes (at most
// maxWarningLines of them: a report holds a bounded number anyway).
type warningLines struct{ lines []string }

const maxWarningLines = 200

func (l *warningLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if len(l.lines) < maxWarningLines {
			l.lines = append(l.lines, line)
		}
	}
	return len(p), nil
}
