package clickhouse

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/subject"
)

var _ store.Eraser = (*Store)(nil)

// ErrClusterRemoval: Erase and Expire are not carried out on a cluster
// (Options.Cluster) yet. Their mutations would have to run on every
// server's own tables (ON CLUSTER), and their claims be read back from
// every server, as Ingest's look-ups are; neither is done.
var ErrClusterRemoval = errors.New("store: clickhouse: erasure and retention are not carried out on a cluster yet")

// Erase implements store.Eraser: one removal (lifecycle.go) of the rows of
// the subject's events. A session or uid is found by the session column,
// a user or device by user_id or device_id, which Ingest fills; the rows of
// schema version 1, which have none, are read (those whose body holds the
// value or a JSON escape, which the server picks) and matched here. The
// ids it returns are those of the canonical copies it removed; a copy that
// is not canonical goes too when it is the subject's (it was never an
// answer). When Erase returns, none of them is in any answer, and Stats
// no longer counts them.
func (s *Store) Erase(ctx context.Context, sub store.Subject) ([]string, error) {
	if s.layout.cluster != "" {
		return nil, ErrClusterRemoval
	}
	if err := sub.Validate(); err != nil {
		return nil, fmt.Errorf("store: erase: %w", err)
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	ids, err := s.erase(ctx, sub)
	if err != nil {
		return ids, fmt.Errorf("store: clickhouse: erase %s: %d events removed, then: %w", sub, len(ids), err)
	}
	return ids, nil
}

func (s *Store) erase(ctx context.Context, sub store.Subject) ([]string, error) {
	end, err := s.beginRemoval(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	var col string
	switch sub.Kind {
	case subject.Session, subject.UID:
		col = "session"
	case subject.User:
		col = "subjects = 1 AND user_id"
	case subject.Device:
		col = "subjects = 1 AND device_id"
	}
	if err := s.claimStored(ctx, token, col+" = ?", sub.Value); err != nil {
		return nil, err
	}
	if !sub.BySession() {
		if err := s.claimUnfilled(ctx, token, sub); err != nil {
			return nil, err
		}
	}
	err = s.claimDuplicates(ctx, token, func(r claimedRow) (bool, error) {
		ev, err := decode(r.body)
		return err == nil && store.SubjectMatches(sub, ev), err
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	err = s.remove(ctx, token, true, func(won string, args []any) error {
		var err error
		if ids, err = s.strings(ctx, "SELECT DISTINCT id FROM "+s.table("lifecycle")+" WHERE "+won, args...); err != nil {
			return fmt.Errorf("read the ids removed: %w", err)
		}
		return nil
	})
	return ids, err
}

// claimUnfilled claims the rows of schema version 1 (subjects = 0, of ids
// not in duplicates) of a user or device: the server reads those whose
// body can hold the field, and they are matched here. The data is JSON in
// the body as it was sent: a value is in it as it is unless it is written
// with an escape (then the data has a backslash), or it is an object or an
// array, which eventdata gives in its own spacing (then every row is read).
func (s *Store) claimUnfilled(ctx context.Context, token string, sub store.Subject) error {
	q := "SELECT id, seq, writer, event_time, category, name, body FROM " + s.table("events") +
		" WHERE subjects = 0 AND id NOT IN (SELECT id FROM " + s.table("duplicates") + ")"
	var args []any
	if c := sub.Value[0]; c != '{' && c != '[' {
		q += " AND (position(body, ?) > 0 OR position(body, '\\\\') > 0)"
		args = append(args, sub.Value)
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read rows of schema version 1: %w", err)
	}
	defer rows.Close()
	var claim []claimedRow
	for rows.Next() {
		r := claimedRow{canonical: true}
		if err := rows.Scan(&r.id, &r.seq, &r.writer, &r.eventTime, &r.category, &r.name, &r.body); err != nil {
			return fmt.Errorf("read rows of schema version 1: %w", err)
		}
		ev, err := decode(r.body)
		if err != nil {
			return err
		}
		if store.SubjectMatches(sub, ev) {
			r.body = ""
			claim = append(claim, r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rows of schema version 1: %w", err)
	}
	return s.claimRows(ctx, token, claim)
}
