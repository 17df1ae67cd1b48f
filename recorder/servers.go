package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// errRemoved is the reason of the sessions of an endpoint that SetServers
// took off the list.
var errRemoved = errors.New("removed from the server list")

// launch runs endpoint ep in a goroutine of the client's, with a context
// of its own (SetServers can end it alone): first retrying its checks in
// the background when they failed with prepErr (KeepTrying), then
// streaming it.
func (c *Client) launch(ctx context.Context, ep *endpoint, prepErr error) {
	epCtx, cancel := context.WithCancelCause(ctx)
	ep.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer ep.conn.close()
		defer cancel(nil)
		if prepErr != nil {
			c.Logger.Warn("endpoint unreachable, retrying in the background", "endpoint", ep.srv.Endpoint(), "err", prepErr)
			if !c.retryPrepare(epCtx, ep) {
				c.endpointDone(nil)
				return
			}
		}
		c.run(epCtx, ep)
	}()
}

// SetServers changes the servers the running client records: an endpoint
// no longer listed ends its sessions (reason "removed from the server
// list") after a last counter reading; a new one is checked and started,
// its checks retried in the background while it is unreachable (as with
// KeepTrying); one listed with another selection or token is ended and
// started again. The new list is checked as Start checks its list
// (CheckServers, the same daemon under two names) and may not be empty.
// It returns the endpoints started and ended, and the errors of new
// servers whose checks failed for a reason retrying cannot fix (they are
// not recorded).
func (c *Client) SetServers(ctx context.Context, servers []Server) (started, ended []string, err error) {
	if err := CheckServers(servers); err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	runCtx, closing, old := c.runCtx, c.closing, slices.Clone(c.eps)
	c.mu.Unlock()
	if runCtx == nil || closing || runCtx.Err() != nil {
		return nil, nil, ErrNotRunning
	}
	rctx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	err = checkSameDaemon(rctx, servers)
	cancel()
	if err != nil {
		return nil, nil, err
	}

	same := func(a, b Server) bool { return a.String() == b.String() && a.Token == b.Token }
	var keep, gone []*endpoint
	for _, ep := range old {
		if slices.ContainsFunc(servers, func(s Server) bool { return same(s, ep.srv) }) {
			keep = append(keep, ep)
		} else {
			gone = append(gone, ep)
		}
	}
	var fresh []Server
	for _, s := range servers {
		if !slices.ContainsFunc(keep, func(ep *endpoint) bool { return same(s, ep.srv) }) {
			fresh = append(fresh, s)
		}
	}

	// The new ones first, so that the client never runs out of endpoints.
	var fatal []error
	var added []*endpoint
	for _, srv := range fresh {
		ep := &endpoint{srv: srv, conn: newConn(srv, cmp.Or(srv.Token, c.Token), c.RequestTimeout)}
		perr := c.prepare(runCtx, ep)
		if perr != nil && !errors.Is(perr, ErrUnreachable) {
			ep.conn.close()
			fatal = append(fatal, perr)
			continue
		}
		if perr == nil {
			c.initCounters(ep)
			ep.ready.Store(true)
		}
		c.mu.Lock()
		c.running++
		c.mu.Unlock()
		c.launch(runCtx, ep, perr)
		added = append(added, ep)
		started = append(started, srv.Endpoint())
	}
	c.mu.Lock()
	c.eps = append(keep, added...)
	c.servers = slices.Clone(servers)
	c.mu.Unlock()
	for _, ep := range gone {
		ep.cancel(errRemoved)
		ended = append(ended, ep.srv.Endpoint())
	}
	if len(fatal) > 0 {
		return started, ended, fmt.Errorf("servers not recorded: %w", errors.Join(fatal...))
	}
	return started, ended, nil
}
