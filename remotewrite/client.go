package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
)

// Errors of a push.
var (
	// ErrRefused means the receiver refused a request with a 4xx other
	// than 429: sending it again would not help, so it is skipped.
	ErrRefused = errors.New("receiver refused the samples")
	// ErrReceiver means a receiver URL or header is not usable.
	ErrReceiver = errors.New("invalid receiver")
)

// maxErrorBody bounds how much of a refusal's body is kept for the log.
const maxErrorBody = 512

// Receiver is one remote-write endpoint and how to authenticate to it.
type Receiver struct {
	// URL is where requests are POSTed, e.g.
	// http://vm:8428/api/v1/write or http://prom:9090/api/v1/write.
	URL string
	// Header is added to every request (X-Scope-OrgID, ...).
	Header http.Header
	// BearerToken, if set, is sent as "Authorization: Bearer ..." and
	// never logged.
	BearerToken string
}

// ID is the receiver's identity in the file's push positions and in
// logs: the URL without credentials, query or fragment.
func (r Receiver) ID() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// Check says whether the receiver can be used: an http or https URL
// with a host, and no credentials in it (they would end up in logs).
func (r Receiver) Check() error {
	u, err := url.Parse(r.URL)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrReceiver, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: %s: want an http:// or https:// URL", ErrReceiver, r.ID())
	case u.Host == "":
		return fmt.Errorf("%w: %s: no host", ErrReceiver, r.URL)
	case u.User != nil:
		return fmt.Errorf("%w: %s: credentials in the URL; use a bearer token file or a header", ErrReceiver, r.ID())
	}
	for k := range r.Header {
		if strings.EqualFold(k, "Authorization") && r.BearerToken != "" {
			return fmt.Errorf("%w: %s: both an Authorization header and a bearer token", ErrReceiver, r.ID())
		}
	}
	return nil
}

// statusError is a response other than 2xx.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

// Is makes a 4xx other than 429 match ErrRefused.
func (e *statusError) Is(target error) bool {
	return target == ErrRefused && e.code/100 == 4 && e.code != http.StatusTooManyRequests
}

// encoder encodes write requests, reusing its buffer.
type encoder struct{ raw []byte }

// encode returns the body of a write request: protobuf, compressed in
// snappy's block format, as the remote-write 1.0 specification says.
// The body is newly allocated.
func (e *encoder) encode(req *prompb.WriteRequest) ([]byte, error) {
	n := req.Size()
	if cap(e.raw) < n {
		e.raw = make([]byte, n)
	}
	e.raw = e.raw[:n]
	if _, err := req.MarshalToSizedBuffer(e.raw); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	// s2's fast level (its "better" level, snappy.Encode's, costs twice
	// the time for little).
	return s2.EncodeSnappy(make([]byte, s2.MaxEncodedLen(n)), e.raw), nil
}

// post sends one encoded write request. A 2xx is success; the error of
// any other status says whether a retry may help (not ErrRefused).
func post(ctx context.Context, c *http.Client, r *Receiver, body []byte) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	hr.Header.Set("User-Agent", "wattrec")
	if r.BearerToken != "" {
		hr.Header.Set("Authorization", "Bearer "+r.BearerToken)
	}
	resp, err := c.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(msg))}
}
