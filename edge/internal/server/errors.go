package server

import (
	"errors"
	"fmt"
	"time"
)

// httpError is an error with the status it should be answered with: the
// edge's one error type that carries a status, for both listeners. Code
// attaches the status where the error is born (statusError, retryLater,
// spoolRefused, internal) and returns it; each listener has one place that
// turns errors into responses (Server.writeError, Admin.writeAdminError),
// where any other error is a 500.
type httpError struct {
	status     int
	msg        string // for the client
	retryAfter int    // seconds; 0 = no Retry-After header
	cause      error  // for the log; may be nil
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.cause)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *httpError) Unwrap() error { return e.cause }

// statusError returns an error that answers status with msg.
func statusError(status int, msg string) error { return &httpError{status: status, msg: msg} }

// retryLater returns a 503 with Retry-After.
func retryLater(msg string, seconds int, cause error) error {
	return &httpError{status: 503, msg: msg, retryAfter: seconds, cause: cause}
}

// spoolRetryAfter is the Retry-After, in seconds, of every answer that
// refuses events because the spool cannot take them: over its quota, its
// disk low on space, or a write that failed. It is one value whichever check
// trips first, since they all report the same state. A spool fills only when
// the forwarder has not got batches through for a long while, and it frees
// room only as the forwarder delivers again, which after an outage happens
// within its backoff (forward.backoff_max, 30s by default). A client that
// retries sooner mostly uploads its body again to be refused again; one that
// waits 30s finds room as soon as the forwarder does.
const spoolRetryAfter = 30

// spoolRefused returns the 503 for events the spool cannot take.
func spoolRefused(msg string, cause error) error { return retryLater(msg, spoolRetryAfter, cause) }

// rateLimited returns the 429 for a client whose bucket on r is empty;
// wait is how long until it has a token again.
func rateLimited(r *Route, wait time.Duration) error {
	secs := max(int(wait/time.Second), 1)
	return &httpError{status: 429, retryAfter: secs, msg: fmt.Sprintf(
		"too many requests from your address to %s: the limit is %g per second with bursts of %d (edge.limits.%s); retry in %d s",
		r.Path, r.Limit.Rate(), r.Limit.Burst(), r.LimitName, secs)}
}

// overloadRetryAfter is the Retry-After of a request shed by the cap on
// requests in flight: requests finish in milliseconds, so a second later
// the edge has room again unless the overload lasts.
const overloadRetryAfter = 1

// overloaded returns the 503 for a request beyond the cap on requests in
// flight.
func overloaded(limit int) error {
	return retryLater(fmt.Sprintf("edge is overloaded (%d requests in flight, edge.limits.max_in_flight); retry", limit), overloadRetryAfter, nil)
}

// internal returns a 500 that logs cause and tells the client little.
func internal(msg string, cause error) error { return &httpError{status: 500, msg: msg, cause: cause} }

// asHTTPError maps any error to the status it is answered with.
func asHTTPError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return &httpError{status: 500, msg: "internal error", cause: err}
}
