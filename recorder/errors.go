package recorder

import "errors"

// Errors the recorder returns, for callers to test with errors.Is, and
// the unexported ones it tests for itself.
var (
	// ErrNotRunning is returned by ReadCounters before Start has succeeded
	// and once the client is stopping.
	ErrNotRunning = errors.New("client is not running")
	// ErrNoServers is returned by CheckServers, and so by Start, when no
	// server is given.
	ErrNoServers = errors.New("no zeusd server given")
	// ErrUnreachable says a daemon could not be reached: no connection,
	// a timeout, an answer of 5xx or one that is not zeusd's JSON (zeus's
	// ZeusdConnectionError). Start's error wraps it for such an endpoint
	// (Client.KeepTrying retries those), and so do DialZeusd and a
	// Zeusd's reads.
	ErrUnreachable = errors.New("unreachable")
	// ErrMissingDevice says an explicit selection (Only) names a device
	// index the daemon does not have (the zeus client's ValueError).
	// Start's and DialZeusd's errors wrap it; they report missing indices
	// before a missing scope, as zeus does.
	ErrMissingDevice = errors.New("no such device index")
	// ErrMissingScope says a kind cannot be read: its API group is not
	// enabled on the daemon, or the daemon requires auth and the token
	// lacks the group's scope or there is no token at all (zeus's
	// ZeusdCapabilityError). Start's and DialZeusd's errors wrap it for
	// an explicit selection, and when every kind of an endpoint was
	// skipped, one of them for this reason.
	ErrMissingScope = errors.New("missing scope")
	// ErrTokenRequired says a daemon requires a token and there is none
	// (Client.Token is empty). It is the case of ErrMissingScope that a
	// token fixes: every error that wraps it wraps ErrMissingScope too.
	ErrTokenRequired = errors.New("the daemon requires a token")
	// ErrTokenExpired says a stream stopped for good because the daemon
	// refused the token (401) after the expiry its whoami answer gave:
	// no retry can succeed with it. Client.Err wraps it.
	ErrTokenExpired = errors.New("the token has expired")
	// ErrDiskFull is wrapped by Recorder.Flush while commits fail for
	// want of disk space (the readings wait in memory and the commit is
	// retried), and by Run's error when the disk was still full at the end.
	ErrDiskFull = errors.New("disk full")
	// ErrSetting is matched by every *SettingError: a Client or Recorder
	// setting outside its limits.
	ErrSetting = errors.New("setting out of range")

	// errMalformed wraps every decode failure.
	errMalformed = errors.New("malformed event")
	// errServerClosed is the reason of a stream the daemon ended cleanly.
	errServerClosed = errors.New("server closed the stream")
	// errStalled is the reason of a session closed because its open
	// connection went silent (see Client.StallPolls and ProbeAfter).
	errStalled = errors.New("stalled")
)
