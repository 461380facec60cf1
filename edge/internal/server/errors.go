package server

import (
	"errors"
	"fmt"
)

// httpError is an error with the status it should be answered with.
type httpError struct {
	status     int
	msg        string
	retryAfter int // seconds; 0 = no Retry-After header
	cause      error
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
