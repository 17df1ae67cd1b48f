package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// maxResponseBytes bounds a non-stream response body.
const maxResponseBytes = 1 << 20

// StatusError is a non-200 answer from zeusd.
type StatusError struct {
	Endpoint string
	Path     string
	Code     int
	Message  string // zeusd's {"error": ...} text, if any
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Endpoint, e.Path, e.Code, msg)
}

// Terminal reports whether retrying cannot help a startup check: the
// token is missing, invalid or lacks a scope (401, 403), or the request
// is wrong for this daemon (400, 404). Once a stream has passed the
// checks, the same answers mean the node changed and are retried.
func (e *StatusError) Terminal() bool {
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest, http.StatusNotFound:
		return true
	}
	return false
}

// statusCode is err's HTTP status when it is a *StatusError, else 0.
func statusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// unknownDevice matches zeusd's answers for device ids it does not have:
// "Unknown GPU indices: [1]. Available: [0]" (streams and the simulator's
// one-shot reads) and "GPU 7 not found" (zeusd's one-shot reads).
var unknownDevice = regexp.MustCompile(`(?i)unknown (gpu|cpu) indices|(gpu|cpu) \d+ not found`)

// isUnknownDevice reports whether err is zeusd's 400 for a device it does
// not have (now): after a daemon restart without it, it may come back.
func isUnknownDevice(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusBadRequest && unknownDevice.MatchString(se.Message)
}

// conn is the HTTP plumbing of one endpoint.
type conn struct {
	endpoint string
	base     string // URL prefix; the host is irrelevant over a socket
	client   *http.Client
	token    string
	timeout  time.Duration // for non-stream requests
}

func newConn(srv Server, token string, timeout time.Duration) *conn {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // zeusd is reached directly
		ResponseHeaderTimeout: 10 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		// Besides its two streams, an endpoint has one short request
		// at a time, mostly (clock, counters, seeds): one idle
		// connection serves them. Each connection costs two goroutines
		// and its buffers, which at a hundred endpoints adds up.
		MaxIdleConnsPerHost: 1,
		WriteBufferSize:     1 << 10, // GET requests of a few hundred bytes
		DisableCompression:  true,
	}
	c := &conn{endpoint: srv.Endpoint(), token: token, timeout: timeout}
	if srv.Network == "unix" {
		path := srv.Address
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
		c.base = "http://localhost"
	} else {
		tr.DialContext = dialer.DialContext
		c.base = "http://" + srv.Address
	}
	// No http.Client.Timeout: it would cut healthy long-lived streams.
	// Short requests get a context deadline instead.
	c.client = &http.Client{Transport: tr}
	return c
}

func (c *conn) close() { c.client.CloseIdleConnections() }

// get sends GET base+path. The caller closes the body of a 200 answer;
// any other status is returned as *StatusError with the body consumed.
func (c *conn) get(ctx context.Context, path string, auth bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.endpoint, path, err)
	}
	if auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.endpoint, path, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		se := &StatusError{Endpoint: c.endpoint, Path: path, Code: resp.StatusCode}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
			se.Message = msg.Error
		} else {
			se.Message = strings.TrimSpace(string(body))
		}
		return nil, se
	}
	return resp, nil
}

// getBody fetches path with the short-request timeout and returns its
// body, of at most maxResponseBytes.
func (c *conn) getBody(ctx context.Context, path string, auth bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.get(ctx, path, auth)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", c.endpoint, path, err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", c.endpoint, path, maxResponseBytes)
	}
	return body, nil
}

// getJSON fetches path with the short-request timeout and decodes it into
// v. It returns the raw body too.
func (c *conn) getJSON(ctx context.Context, path string, auth bool, v any) ([]byte, error) {
	body, err := c.getBody(ctx, path, auth)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("%s %s: decode answer: %w", c.endpoint, path, err)
	}
	return body, nil
}

// getPower reads a get_power answer at path and decodes it with decode,
// the encoding/json decoder of its kind (get_power answers in the
// snapshot format, which the fast path declines).
func (c *conn) getPower(ctx context.Context, path string, decode func([]Value, []byte) ([]Value, error)) ([]Value, error) {
	body, err := c.getBody(ctx, path, true)
	if err != nil {
		return nil, err
	}
	vals, err := decodeSlow(nil, body, decode)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.endpoint, path, err)
	}
	return vals, nil
}

// unreachable marks err, a failed request, with ErrUnreachable unless
// ctx ended or the daemon refused the request (StatusError.Terminal): no
// connection, a timeout, a 5xx or an answer that is not zeusd's.
func unreachable(ctx context.Context, err error) error {
	var se *StatusError
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnreachable) || (errors.As(err, &se) && se.Terminal()) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text repeats
// the URL (for a socket, a meaningless http://localhost).
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Get ") {
		return ue.Unwrap()
	}
	return err
}
