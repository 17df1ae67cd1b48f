package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Timeouts of the metrics server: a scraper that stops reading is cut
// off, not waited for.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 15 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Serve serves h on /metrics on ln until ctx is done, then shuts the
// server down (for at most a few seconds) and returns nil once every
// connection has ended; or the error that stopped it.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
