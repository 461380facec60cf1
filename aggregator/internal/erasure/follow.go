package erasure

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/clickhouse"
	"github.com/edgetrack/edgetrack/internal/jsonlog"
)

// Following the state other aggregators share (ClickHouse).
const (
	// DefaultPollInterval is how often an aggregator reads the shared
	// audit log for the erasures of others (Options.PollInterval): well
	// under an edge's poll of the suppression list.
	DefaultPollInterval = time.Second
	// DefaultAckWait is Options.AckWait: an erasure waits that long at most
	// for the other live aggregators to suppress the subject.
	DefaultAckWait = 30 * time.Second
	// ackEvery is how often an aggregator acknowledges when nothing
	// changed: it says that it is live.
	ackEvery = 10 * time.Second
	// liveFor: an aggregator whose last acknowledgement is older (on the
	// reader's clock) is taken for stopped, and no erasure waits for it.
	liveFor = 3 * ackEvery
	// ioTimeout bounds one operation on the storage.
	ioTimeout = 30 * time.Second
)

// ioContext returns a context for storage operations that a client going
// away does not cut short: an append it interrupted would leave the
// erasure half recorded.
func ioContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), ioTimeout)
}

// follow reads the shared state every Options.PollInterval until ctx ends.
func (e *Erasures) follow(ctx context.Context) {
	defer close(e.followed)
	clickhouse.Follow(ctx, e.opts.PollInterval, e.log, "the shared erasure state", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		e.followMu.Lock()
		defer e.followMu.Unlock()
		return e.catchUp(ctx)
	})
}

// catchUp takes the records other aggregators appended, with ingest held
// off when they add subjects, and then acknowledges: every ingest that
// started before is over, every later one drops their events. Callers hold
// followMu.
func (e *Erasures) catchUp(ctx context.Context) error {
	recs, err := e.store.read(ctx)
	if err != nil {
		return err
	}
	if e.adds(recs) {
		e.gate.Lock()
		e.take(recs)
		e.gate.Unlock()
		for _, r := range recs {
			if r.Action == ActionSuppress {
				e.log.Info("subject of another aggregator's erasure suppressed", "seq", r.Seq, "kind", r.Kind, "subject", r.Subject, "actor", r.Actor)
			}
		}
	} else {
		e.take(recs)
	}
	e.mu.Lock()
	seq := e.seq
	e.mu.Unlock()
	now := e.opts.Now()
	if seq == e.acked && now.Sub(e.ackedAt) < ackEvery {
		return nil
	}
	if err := e.store.ack(ctx, seq, now); err != nil {
		return err
	}
	e.acked, e.ackedAt = seq, now
	return nil
}

// awaitAcks waits until every other live aggregator on the shared storage
// has acknowledged erasure seq, or Options.AckWait has passed: then it
// logs the ones that have not, counts the erasure in
// edgetrack_erasure_unacknowledged_total, and returns nil (the erasure
// goes on; see the package doc for what that leaves).
func (e *Erasures) awaitAcks(ctx context.Context, seq uint64) error {
	if !e.store.shared() {
		return nil
	}
	deadline := time.Now().Add(e.opts.AckWait)
	tick := max(e.opts.PollInterval/4, 10*time.Millisecond)
	for {
		lctx, cancel := ioContext(ctx)
		lag, err := e.store.lagging(lctx, seq, e.opts.Now().Add(-liveFor))
		cancel()
		if err != nil {
			return err
		}
		if len(lag) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			e.lagging.Inc()
			e.log.Warn("erasing before every aggregator acknowledged the suppression; their ingest may still store the subject's events (erase it again once they follow)",
				"seq", seq, "aggregators", lag, "waited", e.opts.AckWait)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for other aggregators to suppress the subject: %w", ctx.Err())
		case <-time.After(tick):
		}
	}
}

// importFiles adds the subjects that an audit log under Options.Dir (the
// state of this aggregator before it kept it in the shared database)
// suppresses to the shared list, so that they stay suppressed. Its
// tombstones are not moved: sync clients read those before the switch.
func (e *Erasures) importFiles(ctx context.Context) error {
	f, err := os.Open(filepath.Join(e.opts.Dir, "audit.log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("erasure: %w", err)
	}
	defer f.Close()
	local, _, err := jsonlog.Read[Record](f)
	if err != nil {
		return fmt.Errorf("erasure: %s: %w", f.Name(), err)
	}
	n := 0
	for _, r := range local {
		if r.Action != ActionSuppress || !e.adds([]Record{r}) {
			continue
		}
		_, recs, err := e.store.suppress(ctx, Record{Time: r.Time, Actor: r.Actor, Action: ActionSuppress, Kind: r.Kind, Subject: r.Subject}, 0)
		e.take(recs)
		if err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		e.log.Info("suppressions of the erasure state in the data directory added to the shared database", "file", f.Name(), "subjects", n)
	}
	return nil
}
