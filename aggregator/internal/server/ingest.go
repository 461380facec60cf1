package server

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/ingest"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// ingest handles POST /v1/ingest: it decodes a batch, stores its events and
// answers an IngestResult. Its statuses are the contract with the edge's
// forwarder: 200 only once the events are durable; 400 will never succeed
// (the edge dead-letters the batch); 413 makes the edge split the batch; 415
// means the edge and the aggregator disagree on the wire format — a version
// or configuration problem, not the events' fault — so the edge retries it;
// 503 with Retry-After is retried.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) (err error) {
	began := time.Now()
	finished := false
	defer func() {
		result := batchResult(err)
		if !finished && err == nil { // panicking
			result = resultError
		}
		s.metrics.batches.WithLabelValues(result).Inc()
		s.metrics.ingestSeconds.Observe(time.Since(began).Seconds())
	}()

	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != ingest.ContentType {
			return errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: send %s", ct, ingest.ContentType)
		}
	}
	enc, err := ingest.ParseEncoding(r.Header.Get("Content-Encoding"))
	if err != nil {
		return statusError(http.StatusUnsupportedMediaType, err)
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	batch, err := s.decoder.Decode(body, enc)
	switch {
	case errors.Is(err, ingest.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge,
			"batch over the limit of %d bytes (aggregator.max_batch_bytes): %v", s.maxBatch, err)
	case err != nil:
		return statusError(http.StatusBadRequest, err)
	}

	edge := r.Header.Get(ingest.EdgeHeader)
	if edge == "" {
		edge = batch.GetEdge()
	}
	var (
		st         store.IngestStats
		suppressed int
	)
	if len(batch.GetEvents()) > 0 {
		ingest := func(evs []*eventpb.Event) (store.IngestStats, error) { return s.store.Ingest(r.Context(), evs) }
		if s.erasures != nil {
			st, suppressed, err = s.erasures.Ingest(batch.GetEvents(), ingest)
		} else {
			st, err = ingest(batch.GetEvents())
		}
		if err != nil {
			return unavailable("storing the batch failed; retry", err)
		}
	}
	s.metrics.events.WithLabelValues(resultStored).Add(float64(st.Stored))
	s.metrics.events.WithLabelValues(resultDuplicate).Add(float64(st.Duplicates))
	s.metrics.events.WithLabelValues(resultRejected).Add(float64(len(st.Rejected)))
	s.metrics.events.WithLabelValues(resultSuppressed).Add(float64(suppressed))
	s.metrics.edgeEvents.WithLabelValues(s.edges.label(edge)).Add(float64(len(batch.GetEvents())))
	log := s.log.With("edge", edge, "boot_epoch", batch.GetBootEpoch(),
		"first_seq", batch.GetFirstSeq(), "last_seq", batch.GetLastSeq())
	if len(st.Rejected) > 0 {
		first := st.Rejected[0]
		log.Warn("events rejected for good", "rejected", len(st.Rejected), "events", len(batch.GetEvents()),
			"first_index", first.Index, "first_id", first.ID, "first_reason", first.Reason)
	}
	log.Debug("batch ingested", "events", len(batch.GetEvents()),
		"stored", st.Stored, "duplicates", st.Duplicates, "rejected", len(st.Rejected), "suppressed", suppressed)

	out, err := proto.Marshal(ingest.Result(st, suppressed))
	if err != nil {
		return fmt.Errorf("encoding the ingest result: %w", err)
	}
	finished = true
	h := w.Header()
	h.Set("Content-Type", ingest.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // an error means the edge went away; it will retry
	return nil
}

// readBody reads the request body, at most maxBatch bytes of it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBatch {
		return nil, errorf(http.StatusRequestEntityTooLarge,
			"body of %d bytes over the limit of %d (aggregator.max_batch_bytes)", r.ContentLength, s.maxBatch)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBatch)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errorf(http.StatusRequestEntityTooLarge,
				"body over the limit of %d bytes (aggregator.max_batch_bytes)", s.maxBatch)
		}
		return nil, &httpError{status: http.StatusBadRequest, msg: "reading the body failed", err: err}
	}
	return buf.Bytes(), nil
}
