package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// class sorts an aggregator response (or its absence) into what the
// forwarder does with the batch.
type class int

const (
	// classRetry: not proof that the events are bad; send the same batch
	// again after a backoff.
	classRetry class = iota
	// classSuccess: 200 with an IngestResult that accounts for every event;
	// dead-letter the rejected ones and ack the batch.
	classSuccess
	// classRejected: 400, the batch as a whole is malformed; dead-letter it.
	classRejected
	// classTooLarge: 413; send smaller batches, or dead-letter a single event.
	classTooLarge
)

// rejection is an entry of a batch that goes to the dead letters.
type rejection struct {
	index  int // into batch.entries
	reason string
}

// outcome is what one attempt at a batch came to.
type outcome struct {
	class      class
	rejected   []rejection   // classSuccess: events refused for good
	reason     string        // classRejected, classTooLarge: dead-letter reason
	fail       failure       // classRetry (and the body of a 413)
	retryAfter time.Duration // classRetry: the aggregator's Retry-After, if any
}

// Response body limits: an IngestResult can name every event of a batch with
// a reason; the body of an error status is only kept as text for reasons and
// logs; what follows is read (up to drainBytes) so the connection is reused.
const (
	maxResultBytes = 16 << 20
	maxErrorText   = 1 << 10
	drainBytes     = 64 << 10
)

// Reason prefixes of dead letters written after an aggregator response.
const (
	rejectedEventPrefix = "aggregator rejected event: "
	rejectedBatchPrefix = "aggregator rejected batch: "
)

// send makes one attempt at b and classifies the result.
func (f *Forwarder) send(ctx context.Context, b *batch) outcome {
	rctx, cancel := context.WithTimeout(ctx, f.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, f.endpoints[f.current], bytes.NewReader(b.body))
	if err != nil {
		return outcome{fail: failure{kind: "request error", err: err}}
	}
	req.Header.Set("Authorization", "Bearer "+f.opts.Token)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "zstd")
	req.Header.Set("X-Edgetrack-Edge", f.opts.EdgeID)

	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		f.m.duration.Observe(time.Since(start).Seconds())
		return outcome{fail: failure{kind: netKind(err), err: err}}
	}
	limit := maxErrorText
	if resp.StatusCode == http.StatusOK {
		limit = maxResultBytes
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	_ = resp.Body.Close()
	f.m.duration.Observe(time.Since(start).Seconds())
	return classify(resp, body, readErr, b)
}

// classify sorts a response; body holds at most the limit send read plus one
// byte, so a longer body is detectable.
func classify(resp *http.Response, body []byte, readErr error, b *batch) outcome {
	code := resp.StatusCode
	switch code {
	case http.StatusOK:
		if readErr != nil {
			return outcome{fail: failure{kind: netKind(readErr), status: code, err: fmt.Errorf("read IngestResult: %w", readErr)}}
		}
		if len(body) > maxResultBytes {
			return outcome{fail: failure{kind: "bad response", status: code,
				err: fmt.Errorf("IngestResult is over %d bytes", maxResultBytes)}}
		}
		var res eventpb.IngestResult
		if err := proto.Unmarshal(body, &res); err != nil {
			return outcome{fail: failure{kind: "bad response", status: code, body: text(body),
				err: fmt.Errorf("decode IngestResult (Content-Type %q): %w", resp.Header.Get("Content-Type"), err)}}
		}
		rejected, err := checkResult(&res, b)
		if err != nil {
			return outcome{fail: failure{kind: "bad response", status: code, err: err}}
		}
		return outcome{class: classSuccess, rejected: rejected}
	case http.StatusBadRequest:
		return outcome{class: classRejected, reason: batchReason(code, body)}
	case http.StatusRequestEntityTooLarge:
		return outcome{class: classTooLarge, reason: batchReason(code, body), fail: failure{status: code, body: text(body)}}
	}

	f := failure{kind: "HTTP " + strconv.Itoa(code), status: code, body: text(body)}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		f.kind, f.auth = "edge token refused", true
	case code != http.StatusRequestTimeout && code != http.StatusTooManyRequests && code < 500:
		f.kind = "unexpected HTTP " + strconv.Itoa(code) // not proof the events are bad
	}
	out := outcome{fail: f}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		out.retryAfter = d
	}
	return out
}

// checkResult checks that an IngestResult accounts for every event of b,
// each exactly once, and returns its rejections. A result that does not is no
// proof of what was stored, so the batch is sent again.
func checkResult(res *eventpb.IngestResult, b *batch) ([]rejection, error) {
	n := len(b.entries)
	got := uint64(res.GetStored()) + uint64(res.GetDuplicates()) + uint64(len(res.GetRejected())) + uint64(res.GetSuppressed())
	if got != uint64(n) {
		return nil, fmt.Errorf("IngestResult accounts for %d events (stored %d, duplicates %d, rejected %d, suppressed %d), the batch has %d",
			got, res.GetStored(), res.GetDuplicates(), len(res.GetRejected()), res.GetSuppressed(), n)
	}
	if len(res.GetRejected()) == 0 {
		return nil, nil
	}
	out := make([]rejection, 0, len(res.GetRejected()))
	seen := make(map[uint32]bool, len(res.GetRejected()))
	for _, rj := range res.GetRejected() {
		i := rj.GetIndex()
		switch {
		case uint64(i) >= uint64(n):
			return nil, fmt.Errorf("IngestResult rejects index %d of a batch of %d", i, n)
		case seen[i]:
			return nil, fmt.Errorf("IngestResult rejects index %d twice", i)
		case rj.GetId() != "" && rj.GetId() != b.ids[i]:
			return nil, fmt.Errorf("IngestResult rejects index %d as id %q, but the event there has id %q", i, rj.GetId(), b.ids[i])
		}
		seen[i] = true
		reason := rj.GetReason()
		if reason == "" {
			reason = "no reason given"
		}
		out = append(out, rejection{index: int(i), reason: rejectedEventPrefix + reason})
	}
	return out, nil
}

// batchReason is the dead-letter reason for a batch the aggregator refused as
// a whole: "aggregator rejected batch: <status> <body text>".
func batchReason(code int, body []byte) string {
	t := text(body)
	if t == "" {
		t = http.StatusText(code)
	}
	return rejectedBatchPrefix + strconv.Itoa(code) + " " + t
}

// text returns the start of a response body as one line of valid UTF-8: the
// message of a JSON error body ({"error": "..."}, what the aggregator sends),
// or else the body itself.
func text(body []byte) string {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var e struct {
			Error *string `json:"error"`
		}
		if json.Unmarshal(t, &e) == nil && e.Error != nil {
			body = []byte(*e.Error)
		}
	}
	cut := len(body) > maxErrorText
	if cut {
		body = body[:maxErrorText]
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if cut {
		s += " …"
	}
	return s
}

// netKind names a failed request or body read.
func netKind(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout"
	}
	return "network error"
}
