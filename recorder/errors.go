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
	// ErrTokenRequired says a daemon requires a token and the client has
	// none (Client.Token is empty). Start's error wraps it when a
	// selection names devices the token would have given, and when every
	// kind of an endpoint was skipped, one of them for want of a token.
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

	// errUnreachable marks a startup failure that Client.KeepTrying
	// retries.
	errUnreachable = errors.New("unreachable")
	// errMalformed wraps every decode failure.
	errMalformed = errors.New("malformed event")
	// errServerClosed is the reason of a stream the daemon ended cleanly.
	errServerClosed = errors.New("server closed the stream")
	// errStalled is the reason of a session closed because its open
	// connection went silent (see Client.StallPolls and ProbeAfter).
	errStalled = errors.New("stalled")
)
