// Package control is the local API of a running recorder: HTTP over a Unix
// socket next to the database file (FILE.sock, mode 0600). A recorder owns
// its bbolt file, so read commands (query, export, info) and marks reach
// the data through it while it runs; with no recorder they open the file
// read-only themselves. Both paths run the same functions, so they print
// the same bytes.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// ErrNoRecorder means no recorder answers on the file's control socket.
var ErrNoRecorder = errors.New("no running recorder")

// SocketPath is the control socket of the database file db.
func SocketPath(db string) string { return db + ".sock" }

// QueryRequest is an energy query (see query.Options).
type QueryRequest struct {
	Options query.Options `json:"options"`
	Method  string        `json:"method"` // hold, trapezoid or compare
	Format  string        `json:"format"` // table, json or csv
}

// ExportRequest is an export: the raw readings, or with GridMs the
// energy grid, in Format (parquet, csv or jsonl; the grid has no jsonl).
type ExportRequest struct {
	Filter  query.Filter   `json:"filter"`
	Format  string         `json:"format"`
	GridMs  int64          `json:"grid_ms,omitempty"`
	Options export.Options `json:"options"`
}

// Query runs req against db and writes the report to w.
func Query(ctx context.Context, w io.Writer, db *store.DB, req QueryRequest) error {
	switch req.Method {
	case "", "hold", "trapezoid", "compare":
	default:
		return fmt.Errorf("method %q: want hold, trapezoid or compare", req.Method)
	}
	rep, err := query.Energy(ctx, db, req.Options)
	if err != nil {
		return err
	}
	if req.Method == "trapezoid" {
		rep.UseTrapezoid()
	}
	return rep.Write(w, req.Format, req.Method == "compare")
}

// Export writes db's readings (or grid) as req asks.
func Export(ctx context.Context, w io.Writer, db *store.DB, req ExportRequest) error {
	var err error
	switch {
	case req.GridMs > 0 && req.Format == "parquet":
		_, err = export.GridParquet(ctx, w, db, req.Filter, req.GridMs, req.Options)
	case req.GridMs > 0 && req.Format == "csv":
		_, err = export.GridCSV(ctx, w, db, req.Filter, req.GridMs, req.Options)
	case req.GridMs > 0:
		err = fmt.Errorf("format %q: the grid is written as parquet or csv", req.Format)
	case req.Format == "parquet":
		_, err = export.Parquet(ctx, w, db, req.Filter, req.Options)
	case req.Format == "csv":
		_, err = export.CSV(ctx, w, db, req.Filter, req.Options)
	case req.Format == "jsonl" || req.Format == "":
		_, err = export.JSONL(ctx, w, db, req.Filter)
	default:
		err = fmt.Errorf("format %q: want parquet, csv or jsonl", req.Format)
	}
	return err
}

// Server serves the control API of a running recorder.
type Server struct {
	DB *store.DB
	// Flush commits what the recorder has received but not yet committed,
	// so a read sees everything up to now. Optional.
	Flush func(ctx context.Context) error
	// Mark performs a mark request (ApplyMark plus whatever the recorder
	// does at a mark, such as reading the hardware counters). Optional:
	// without it marks are refused.
	Mark   func(ctx context.Context, req MarkRequest) (store.Mark, error)
	Logger *slog.Logger
}

// errorTrailer carries an error that happens after a streamed answer began.
const errorTrailer = "X-Wattrec-Error"

// Serve listens on the Unix socket path (mode 0600, replacing a stale
// socket file) until ctx is done, then stops, waits for running requests
// and removes the socket file.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := listenUnix(path)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"db": s.DB.Path(), "pid": os.Getpid()})
	})
	mux.HandleFunc("POST /v1/query", s.stream(func(ctx context.Context, w io.Writer, body []byte) error {
		var req QueryRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return badRequest{fmt.Errorf("query request: %w", err)}
		}
		return Query(ctx, w, s.DB, req)
	}))
	mux.HandleFunc("POST /v1/export", s.stream(func(ctx context.Context, w io.Writer, body []byte) error {
		var req ExportRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return badRequest{fmt.Errorf("export request: %w", err)}
		}
		return Export(ctx, w, s.DB, req)
	}))
	mux.HandleFunc("POST /v1/info", s.stream(func(ctx context.Context, w io.Writer, _ []byte) error {
		return query.Info(ctx, w, s.DB)
	}))
	mux.HandleFunc("POST /v1/marks", func(w http.ResponseWriter, r *http.Request) {
		var req MarkRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "mark request: " + err.Error()})
			return
		}
		if s.Mark == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this recorder does not take marks"})
			return
		}
		m, err := s.Mark(r.Context(), req)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("GET /v1/marks", func(w http.ResponseWriter, r *http.Request) {
		marks, err := s.DB.Marks(r.Context(), r.URL.Query().Get("name"))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
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
	os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, serr)
}

// listenUnix listens on path with mode 0600. A socket file nobody answers
// on (left by a killed recorder) is replaced; a live one is an error.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another recorder is answering on it", path)
		}
		os.Remove(path)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, nil
}

// listenPrivate binds the socket inside a fresh 0700 directory, sets it to
// 0600 and only then moves it into place: the API has no token, so no
// other user may ever reach it, not even between bind and chmod.
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wattrec-sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Serve removes path itself
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// badRequest marks errors in the request itself (HTTP 400).
type badRequest struct{ error }

func (b badRequest) Unwrap() error { return b.error }

// stream adapts a writer function to a handler: errors before the first
// byte become a status and {"error": ...}; later ones travel in a trailer.
func (s *Server) stream(fn func(ctx context.Context, w io.Writer, body []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if s.Flush != nil {
			if err := s.Flush(r.Context()); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "flush before read: " + err.Error()})
				return
			}
		}
		w.Header().Set("Trailer", errorTrailer)
		lw := &lazyWriter{w: w}
		if err := fn(r.Context(), lw, body); err != nil {
			if !lw.started {
				status := http.StatusInternalServerError
				var br badRequest
				if errors.As(err, &br) {
					status = http.StatusBadRequest
				} else if errors.Is(err, store.ErrNotFound) || isUserError(err) {
					status = http.StatusUnprocessableEntity
				}
				w.Header().Del("Trailer")
				writeJSON(w, status, map[string]string{"error": err.Error()})
				return
			}
			w.Header().Set(errorTrailer, err.Error())
			if s.Logger != nil {
				s.Logger.Warn("control request failed mid-answer", "path", r.URL.Path, "err", err)
			}
		}
	}
}

// isUserError reports errors that describe the request, not the server.
// Query and export return plain errors for bad filters; without a typed
// error, anything that is not a context or I/O failure is the user's.
func isUserError(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// lazyWriter records whether anything was written yet.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.started = true
	}
	return l.w.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
