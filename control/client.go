package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// pingTimeout bounds Dial's wait for the recorder's first answer.
const pingTimeout = 2 * time.Second

// Client talks to a running recorder's control socket.
type Client struct {
	path string
	http *http.Client
}

// Dial connects to the recorder that holds db, if any. It returns
// ErrNoRecorder when the socket is missing or nobody listens on it (a
// recorder killed with -9 leaves a stale socket file). A recorder that
// accepts but does not answer within 2 s is store.ErrLocked: the file is
// in use by a recorder that cannot serve it.
func Dial(ctx context.Context, db string) (*Client, error) {
	path, err := dialPath(db)
	if err != nil {
		return nil, ErrNoRecorder
	}
	c := &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		ResponseHeaderTimeout: 30 * time.Second,
	}}}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(pingCtx, http.MethodGet, "http://recorder/v1/ping", nil)
	resp, err := c.http.Do(req)
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
		return nil, ErrNoRecorder
	case ctx.Err() == nil && pingCtx.Err() != nil: // it accepted, and then said nothing
		return nil, fmt.Errorf("%s: %w that does not answer on its control socket %s (no answer in %v)", db, store.ErrLocked, path, pingTimeout)
	default:
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer resp.Body.Close()
	var ping PingResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ping) != nil {
		return nil, fmt.Errorf("control socket %s: ping: HTTP %d", path, resp.StatusCode)
	}
	if ping.API != APIVersion {
		return nil, fmt.Errorf("control socket %s: the recorder speaks API version %d, this build %d: %w", path, ping.API, APIVersion, ErrAPIVersion)
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error { c.http.CloseIdleConnections(); return nil }

// Query runs the energy query opt in the recorder and copies the report
// to w.
func (c *Client) Query(ctx context.Context, w io.Writer, opt query.Options) error {
	trailer, err := c.postTrailer(ctx, w, "/v1/query", queryRequest(opt))
	if err != nil || opt.Warnings == nil {
		return err
	}
	var lines []string
	if js := trailer.Get(warningsTrailer); js != "" {
		if err := json.Unmarshal([]byte(js), &lines); err != nil {
			return fmt.Errorf("recorder at %s: warnings: %w", c.path, err)
		}
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(opt.Warnings, l); err != nil {
			return err
		}
	}
	return nil
}

// Export runs req in the recorder and copies the export to w.
// req.Options.Progress is not called: the recorder does not report it.
func (c *Client) Export(ctx context.Context, w io.Writer, req export.Request) error {
	return c.post(ctx, w, "/v1/export", exportRequest(req))
}

// Plot draws the timeline req in the recorder and copies the picture to
// w.
func (c *Client) Plot(ctx context.Context, w io.Writer, req chart.Request) error {
	return c.post(ctx, w, "/v1/plot", plotRequest(req))
}

// Report writes the report req in the recorder and copies the HTML to w.
func (c *Client) Report(ctx context.Context, w io.Writer, req report.Request) error {
	return c.post(ctx, w, "/v1/report", reportRequest(req))
}

// Info copies the recorder's info summary to w.
func (c *Client) Info(ctx context.Context, w io.Writer, format string) error {
	return c.post(ctx, w, "/v1/info", InfoRequest{Format: format})
}

// Mark asks the recorder to perform req.
func (c *Client) Mark(ctx context.Context, req MarkRequest) (store.Mark, error) {
	var buf bytes.Buffer
	if err := c.post(ctx, &buf, "/v1/marks", req); err != nil {
		return store.Mark{}, err
	}
	var m store.Mark
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		return store.Mark{}, fmt.Errorf("recorder at %s: mark answer: %w", c.path, err)
	}
	return m, nil
}

// Marks lists the recorder's marks named name ("" = all).
func (c *Client) Marks(ctx context.Context, name string) ([]store.Mark, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://recorder/v1/marks?name="+url.QueryEscape(name), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("recorder at %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.answerError(resp)
	}
	var marks []store.Mark
	if err := json.NewDecoder(resp.Body).Decode(&marks); err != nil {
		return nil, fmt.Errorf("recorder at %s: marks answer: %w", c.path, err)
	}
	return marks, nil
}

func (c *Client) post(ctx context.Context, w io.Writer, path string, body any) error {
	_, err := c.postTrailer(ctx, w, path, body)
	return err
}

// postTrailer posts body to path, copies the answer to w and returns its
// trailer.
func (c *Client) postTrailer(ctx context.Context, w io.Writer, path string, body any) (http.Header, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://recorder"+path, bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("recorder at %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.answerError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return nil, fmt.Errorf("recorder at %s: %w", c.path, err)
	}
	if msg := resp.Trailer.Get(errorTrailer); msg != "" {
		return nil, fromWire(ErrorResponse{Error: msg, Code: resp.Trailer.Get(errorCodeTrailer)})
	}
	return resp.Trailer, nil
}

// answerError turns an answer that is not 200 into an error: the
// recorder's message, matching the sentinel its code names.
func (c *Client) answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er ErrorResponse
	if json.Unmarshal(b, &er) == nil && er.Error != "" {
		return fromWire(er)
	}
	return fmt.Errorf("recorder at %s: HTTP %d: %s", c.path, resp.StatusCode, strings.TrimSpace(string(b)))
}
