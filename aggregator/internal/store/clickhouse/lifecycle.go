package clickhouse

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A removal takes events out of the store for Erase and Expire. One
// removal is one token (random hex) and these steps:
//
//  1. Claim: the rows to remove are written to the lifecycle table under
//     the token (kind claimRow), with what the rollups count them by. A
//     row is named by (seq, writer), which no two rows share: each process
//     gives a seq once.
//     Rows of ids recorded in duplicates are claimed by claimDuplicates,
//     which takes every copy of an id whose canonical copy goes, so that
//     no other copy takes its place.
//  2. Delete: one ALTER TABLE events DELETE of the rows claimed under the
//     token (a mutation, which the server carries out in the background
//     and which survives its restart). Its number is recorded (kind
//     claimMutation).
//  3. Decide: a row claimed by several removals (of several aggregators
//     on one database; removals of one store run one at a time) is removed
//     by the one whose DELETE has the least number: mutations of a table
//     are applied in the order of their numbers, and each claimed its rows
//     while they were stored, before its DELETE. The rows this removal
//     loses are recorded (kind claimLost).
//  4. Wait for the DELETE to finish (system.mutations), then decrement
//     the rollups by the rows it won: one INSERT of negative counts into
//     rollups, a row per cell. Then the ids none of whose rows are left
//     leave duplicates (another DELETE, waited for).
//  5. Forget, for an erasure: the ids in its claims are blanked (an
//     UPDATE, waited for), as an id can hold the session or uid erased.
//
// While a removal runs, readers see each row stored or removed, and Stats
// may count the rows already deleted until step 4 ends, never fewer than
// are stored. When the wait ends early (its context, an error), the removal
// is kept as pending and the next removal of this store finishes it first;
// a process that ends before that leaves the rollups counting those rows.
// Claims are deleted by a later removal once they are claimGrace old and
// their DELETE has finished: a removal of another aggregator that claimed
// the same rows decides (step 3) within seconds of its claim, and reads
// them until then.
type removal struct {
	token     string
	mutation  string // the DELETE's mutation_id on events
	number    uint64 // its number: the digits of mutation_id
	forget    bool   // step 5
	undecided bool   // step 3 failed: pending, it decides first
}

// removals is a store's state of removals: they run one at a time, each
// holding the one place in turn; pending are those whose wait ended early,
// which the next one finishes (read and written by the holder).
type removals struct {
	turn    chan struct{}
	pending []removal
}

func newRemovals() removals { return removals{turn: make(chan struct{}, 1)} }

// Kinds of lifecycle rows.
const (
	claimRow      = 0 // a row of events that the removal deletes
	claimLost     = 1 // a claimed row that a removal with an earlier DELETE removes
	claimMutation = 2 // the number of the removal's DELETE, in seq
)

// strings reads a query's rows of one String column.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// placeholders is n parameters of an IN list: "?, ?, …".
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// errNoRows is what QueryRow's Scan says when there is no row.
var errNoRows = sql.ErrNoRows

// claimGrace is how long the claims of a finished removal are kept.
const claimGrace = time.Hour

// mutationPoll bounds the pause between two looks at system.mutations,
// and mutationNote is how often a long wait is logged.
const (
	mutationPoll = 200 * time.Millisecond
	mutationNote = time.Minute
)

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// claimColumns are the lifecycle columns a claim writes (claimed_at is
// the server's now()).
const claimColumns = "token, kind, canonical, id, seq, writer, event_time, category, name"

// beginRemoval waits for the store's removals before it (its context
// bounds the wait), finishes those left pending, and deletes old claims.
// The caller calls end when its removal is done.
func (s *Store) beginRemoval(ctx context.Context) (end func(), err error) {
	select {
	case s.removals.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	end = func() { <-s.removals.turn }
	for len(s.removals.pending) > 0 {
		r := &s.removals.pending[0]
		if r.undecided {
			if err := s.decide(ctx, *r); err != nil {
				end()
				return nil, fmt.Errorf("finish an earlier removal: %w", err)
			}
			r.undecided = false
		}
		if err := s.finish(ctx, *r); err != nil {
			end()
			return nil, fmt.Errorf("finish an earlier removal: %w", err)
		}
		s.removals.pending = s.removals.pending[1:]
	}
	if err := s.dropOldClaims(ctx); err != nil {
		end()
		return nil, err
	}
	return end, nil
}

// claimStored claims, under token, the rows of events that match cond
// (with its arguments), of ids not recorded in duplicates (claimDuplicates
// claims those), as canonical copies; the server copies them.
func (s *Store) claimStored(ctx context.Context, token, cond string, args ...any) error {
	q := "INSERT INTO " + s.table("lifecycle") + " (" + claimColumns + ") SELECT ?, " + strconv.Itoa(claimRow) +
		", 1, id, seq, writer, event_time, category, name FROM " + s.table("events") +
		" WHERE (" + cond + ") AND id NOT IN (SELECT id FROM " + s.table("duplicates") + ")"
	if err := s.conn.Exec(ctx, q, append([]any{token}, args...)...); err != nil {
		return fmt.Errorf("claim rows: %w", err)
	}
	return nil
}

// claimedRow is one row of events as a claim names it.
type claimedRow struct {
	copyKey
	canonical      bool
	eventTime      int64
	category, name string
	body           string // read only where the claim needs it
}

// claimRows claims rows under token.
func (s *Store) claimRows(ctx context.Context, token string, rows []claimedRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("lifecycle")+" ("+claimColumns+")")
	if err != nil {
		return fmt.Errorf("claim rows: %w", err)
	}
	for _, r := range rows {
		if err := b.Append(token, uint8(claimRow), b2u(r.canonical), r.id, r.seq, r.writer, r.eventTime, r.category, r.name); err != nil {
			b.Abort()
			return fmt.Errorf("claim rows: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("claim rows: %w", err)
	}
	return nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// claimDuplicates claims, under token, rows of the ids recorded in
// duplicates: every copy of an id whose canonical copy goes (so that no
// other copy becomes the event), and a copy that is not canonical and
// goes by itself. goes says whether a row goes; a row's body is read.
func (s *Store) claimDuplicates(ctx context.Context, token string, goes func(claimedRow) (bool, error)) error {
	rows, err := s.conn.Query(ctx, "SELECT id, seq, writer, event_time, category, name, body FROM "+s.table("events")+
		" WHERE id IN (SELECT id FROM "+s.table("duplicates")+")")
	if err != nil {
		return fmt.Errorf("read duplicates: %w", err)
	}
	var all []claimedRow
	best := map[string]copyKey{}
	for rows.Next() {
		var r claimedRow
		if err := rows.Scan(&r.id, &r.seq, &r.writer, &r.eventTime, &r.category, &r.name, &r.body); err != nil {
			rows.Close()
			return fmt.Errorf("read duplicates: %w", err)
		}
		if b, ok := best[r.id]; !ok || r.copyKey.less(b) {
			best[r.id] = r.copyKey
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read duplicates: %w", err)
	}
	whole := map[string]bool{} // ids whose canonical copy goes
	alone := make([]bool, len(all))
	for i := range all {
		r := &all[i]
		r.canonical = best[r.id] == r.copyKey
		ok, err := goes(*r)
		if err != nil {
			return err
		}
		if ok && r.canonical {
			whole[r.id] = true
		}
		alone[i] = ok && !r.canonical
	}
	var claim []claimedRow
	for i, r := range all {
		if whole[r.id] || alone[i] {
			claim = append(claim, r)
		}
	}
	return s.claimRows(ctx, token, claim)
}

// remove carries out steps 2 to 5 of the removal of token's claims (see
// removal); forget is step 5's. decided is called after step 3, with the
// lifecycle condition that selects the canonical rows the removal won (for
// the caller to read what it removed; when step 3 fails, those it may
// take): what it reads is what the caller returns even when the rest
// fails, since those rows go all the same. With no claims, remove does
// nothing.
func (s *Store) remove(ctx context.Context, token string, forget bool, decided func(won string, args []any) error) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.table("lifecycle")+" WHERE token = ? AND kind = ?", token, uint8(claimRow)).Scan(&n); err != nil {
		return fmt.Errorf("count claims: %w", err)
	}
	if n == 0 {
		return nil
	}
	if err := s.keepFeedEnd(ctx, token); err != nil {
		return err
	}
	claims := "SELECT seq, writer FROM " + s.table("lifecycle") + " WHERE token = ? AND kind = " + strconv.Itoa(claimRow)
	deleteErr := s.conn.Exec(ctx, "ALTER TABLE "+s.table("events")+" DELETE WHERE (seq, writer) IN ("+claims+")", token)
	r := removal{token: token, forget: forget}
	var err error
	// Also after an error: the server may have taken the DELETE all the
	// same, and then it is carried out.
	if r.mutation, r.number, err = s.findMutation(ctx, "events", token); err != nil {
		if deleteErr != nil {
			return fmt.Errorf("delete: %w", deleteErr)
		}
		return err
	}
	canonical := "token = ? AND kind = " + strconv.Itoa(claimRow) + " AND canonical = 1"
	if err := s.decide(ctx, r); err != nil {
		// The DELETE goes on: say what it may take (for an erasure's
		// tombstone, more is safer than less), and decide later.
		r.undecided = true
		s.removals.pending = append(s.removals.pending, r)
		if decided != nil {
			_ = decided(canonical, []any{token})
		}
		return err
	}
	if decided != nil {
		won := canonical + " AND (seq, writer) NOT IN (SELECT seq, writer FROM " +
			s.table("lifecycle") + " WHERE token = ? AND kind = " + strconv.Itoa(claimLost) + ")"
		if err := decided(won, []any{token, token}); err != nil {
			s.removals.pending = append(s.removals.pending, r)
			return err
		}
	}
	if err := s.finish(ctx, r); err != nil {
		s.removals.pending = append(s.removals.pending, r)
		return err
	}
	return nil
}

// findMutation returns the id and number of the mutation of table whose
// command names token.
func (s *Store) findMutation(ctx context.Context, table, token string) (string, uint64, error) {
	var id string
	err := s.conn.QueryRow(ctx, "SELECT mutation_id FROM system.mutations WHERE database = ? AND table = ? AND position(command, ?) > 0",
		s.db, table, token).Scan(&id)
	if err != nil {
		return "", 0, fmt.Errorf("find the mutation of %s: %w", table, err)
	}
	n, err := mutationNumber(id)
	return id, n, err
}

// mutationNumber reads the number in a mutation_id: mutation_<n>.txt for
// a MergeTree, the digits of a ZooKeeper node for a replicated one.
func mutationNumber(id string) (uint64, error) {
	digits := strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return r
		}
		return -1
	}, id)
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("mutation id %q has no number", id)
	}
	return n, nil
}

// decide records the number of r's DELETE and the claimed rows it loses
// to removals whose DELETE came first (step 3).
func (s *Store) decide(ctx context.Context, r removal) error {
	if err := s.recordLifecycle(ctx, r.token, claimMutation, r.number); err != nil {
		return err
	}
	lc := s.table("lifecycle")
	others, err := s.strings(ctx, "SELECT DISTINCT token FROM "+lc+" WHERE kind = ? AND token != ? AND (seq, writer) IN (SELECT seq, writer FROM "+
		lc+" WHERE token = ? AND kind = ?)", uint8(claimRow), r.token, r.token, uint8(claimRow))
	if err != nil {
		return fmt.Errorf("look for other claims: %w", err)
	}
	var first []string // removals whose DELETE came before r's
	for _, t := range others {
		n, ok, err := s.removalNumber(ctx, t)
		if err != nil {
			return err
		}
		// One without a DELETE yet gets a later number than r's, or
		// never deletes.
		if ok && n < r.number {
			first = append(first, t)
		}
	}
	if len(first) == 0 {
		return nil
	}
	args := []any{r.token, uint8(claimLost), r.token, uint8(claimRow), uint8(claimRow)}
	for _, t := range first {
		args = append(args, t)
	}
	err = s.conn.Exec(ctx, "INSERT INTO "+lc+" (token, kind, seq, writer) SELECT ?, ?, seq, writer FROM "+lc+
		" WHERE token = ? AND kind = ? AND (seq, writer) IN (SELECT seq, writer FROM "+lc+" WHERE kind = ? AND token IN ("+placeholders(len(first))+"))", args...)
	if err != nil {
		return fmt.Errorf("record the rows another removal takes: %w", err)
	}
	s.log.Warn("rows claimed by two removals at once (several aggregators on one database); the earlier DELETE takes them", "removals", len(first)+1)
	return nil
}

// removalNumber returns the number of the DELETE of the removal token,
// and false when it has none yet.
func (s *Store) removalNumber(ctx context.Context, token string) (uint64, bool, error) {
	var n, found uint64
	if err := s.conn.QueryRow(ctx, "SELECT max(seq), count() FROM "+s.table("lifecycle")+" WHERE token = ? AND kind = ?",
		token, uint8(claimMutation)).Scan(&n, &found); err != nil {
		return 0, false, fmt.Errorf("read a removal's number: %w", err)
	}
	if found > 0 {
		return n, true, nil
	}
	// Not recorded yet (or never: it stopped): the server knows it.
	var id string
	err := s.conn.QueryRow(ctx, "SELECT mutation_id FROM system.mutations WHERE database = ? AND table = 'events' AND position(command, ?) > 0",
		s.db, token).Scan(&id)
	if errors.Is(err, errNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read a removal's number: %w", err)
	}
	n, err = mutationNumber(id)
	return n, err == nil, err
}

// recordLifecycle writes one lifecycle row of token that holds a number.
func (s *Store) recordLifecycle(ctx context.Context, token string, kind uint8, n uint64) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("lifecycle")+" (token, kind, seq)")
	if err != nil {
		return fmt.Errorf("record a removal: %w", err)
	}
	if err := b.Append(token, kind, n); err != nil {
		b.Abort()
		return fmt.Errorf("record a removal: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record a removal: %w", err)
	}
	return nil
}

// finish is steps 4 and 5 of r: wait for its DELETE, decrement the rollups
// by the rows it won, take ids none of whose rows are left out of
// duplicates, and blank the ids of its claims when r forgets.
func (s *Store) finish(ctx context.Context, r removal) error {
	if err := s.waitMutation(ctx, "events", r.mutation); err != nil {
		return err
	}
	lc := s.table("lifecycle")
	// The cells of rollups_mv, counted down.
	err := s.conn.Exec(ctx, "INSERT INTO "+s.table("rollups")+" (width, bucket, category, name, events) "+
		"SELECT width, intDiv(event_time, d) - (event_time % d < 0) AS bucket, category, name, -toInt64(count()) AS events FROM "+lc+
		" ARRAY JOIN [toUInt8(1), toUInt8(2), toUInt8(3)] AS width, [toInt64(60000000000), toInt64(3600000000000), toInt64(86400000000000)] AS d"+
		" WHERE token = ? AND kind = ? AND (seq, writer) NOT IN (SELECT seq, writer FROM "+lc+" WHERE token = ? AND kind = ?)"+
		" GROUP BY width, bucket, category, name", r.token, uint8(claimRow), r.token, uint8(claimLost))
	if err != nil {
		return fmt.Errorf("decrement the rollups: %w", err)
	}
	// From here on, the rows and their counts are gone: a failure below
	// leaves ids in duplicates that no row has, which cost a look-up, or
	// ids in claims until they are dropped, and is logged.
	if err := s.dropDuplicates(ctx, r.token); err != nil {
		s.log.Warn("removal: deleting ids without rows from duplicates", "error", err)
	}
	if r.forget {
		err := s.conn.Exec(ctx, "ALTER TABLE "+lc+" UPDATE id = '' WHERE token = ?", r.token)
		if err == nil {
			err = s.awaitMutation(ctx, "lifecycle", r.token)
		}
		if err != nil {
			s.log.Warn("removal: blanking the ids of an erasure's claims; they are deleted in "+claimGrace.String(), "error", err)
		}
	}
	return nil
}

// dropDuplicates takes the ids claimed under token that no row has any
// more out of duplicates.
func (s *Store) dropDuplicates(ctx context.Context, token string) error {
	claimed := "SELECT id FROM " + s.table("lifecycle") + " WHERE token = ? AND kind = " + strconv.Itoa(claimRow)
	var dups uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.table("duplicates")+" WHERE id IN ("+claimed+")", token).Scan(&dups); err != nil {
		return err
	}
	if dups == 0 {
		return nil
	}
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table("duplicates")+" DELETE WHERE id IN ("+claimed+") AND id NOT IN (SELECT id FROM "+
		s.table("events")+" WHERE id IN ("+claimed+"))", token, token); err != nil {
		return err
	}
	return s.awaitMutation(ctx, "duplicates", token)
}

// awaitMutation waits for the mutation of table whose command names token.
func (s *Store) awaitMutation(ctx context.Context, table, token string) error {
	id, _, err := s.findMutation(ctx, table, token)
	if err != nil {
		return err
	}
	return s.waitMutation(ctx, table, id)
}

// waitMutation waits until the server has carried out the mutation id of
// table. One that is no longer listed is done (the server keeps the last
// ones finished).
func (s *Store) waitMutation(ctx context.Context, table, id string) error {
	pause := 5 * time.Millisecond
	began, told := time.Now(), time.Now()
	for {
		var done uint8
		var left int64
		err := s.conn.QueryRow(ctx, "SELECT is_done, parts_to_do FROM system.mutations WHERE database = ? AND table = ? AND mutation_id = ?",
			s.db, table, id).Scan(&done, &left)
		if errors.Is(err, errNoRows) || err == nil && done == 1 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for the mutation %s of %s: %w", id, table, err)
		}
		if time.Since(told) > mutationNote {
			told = time.Now()
			s.log.Info("waiting for the server to carry out a mutation", "table", table, "mutation", id,
				"parts_to_do", left, "waited", time.Since(began).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the mutation %s of %s (%d parts to do): %w", id, table, left, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, mutationPoll)
	}
}

// dropOldClaims deletes the lifecycle rows of removals that are not
// pending, whose claims are claimGrace old and whose DELETE is done.
func (s *Store) dropOldClaims(ctx context.Context) error {
	old, err := s.strings(ctx, "SELECT token FROM "+s.table("lifecycle")+" GROUP BY token HAVING max(claimed_at) < now() - ?",
		int64(claimGrace/time.Second))
	if err != nil {
		return fmt.Errorf("read old claims: %w", err)
	}
	if len(old) == 0 {
		return nil
	}
	commands, err := s.strings(ctx, "SELECT command FROM system.mutations WHERE database = ? AND is_done = 0", s.db)
	if err != nil {
		return fmt.Errorf("read mutations: %w", err)
	}
	var drop []any
	for _, t := range old {
		busy := slices.ContainsFunc(s.removals.pending, func(r removal) bool { return r.token == t }) ||
			slices.ContainsFunc(commands, func(c string) bool { return strings.Contains(c, t) })
		if !busy {
			drop = append(drop, t)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	// Not waited for: nothing reads these claims any more.
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table("lifecycle")+" DELETE WHERE token IN ("+placeholders(len(drop))+")", drop...); err != nil {
		return fmt.Errorf("delete old claims: %w", err)
	}
	return nil
}

// keepFeedEnd records the highest seq among token's claims when it is the
// feed's end, so that Open does not give it out again once its row is
// gone (Open reads the end from the events left).
func (s *Store) keepFeedEnd(ctx context.Context, token string) error {
	var claimed, end uint64
	if err := s.conn.QueryRow(ctx, "SELECT max(seq) FROM "+s.table("lifecycle")+" WHERE token = ? AND kind = ?", token, uint8(claimRow)).Scan(&claimed); err != nil {
		return fmt.Errorf("read the claims' end: %w", err)
	}
	if err := s.conn.QueryRow(ctx, "SELECT max(seq) FROM "+s.table("events")).Scan(&end); err != nil {
		return fmt.Errorf("read the feed's end: %w", err)
	}
	if claimed < end {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("meta")+" (key, value)")
	if err != nil {
		return fmt.Errorf("record the feed's end: %w", err)
	}
	if err := b.Append(metaFeedEnd, strconv.FormatUint(claimed, 10)); err != nil {
		b.Abort()
		return fmt.Errorf("record the feed's end: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record the feed's end: %w", err)
	}
	return nil
}

// metaFeedEnd is the meta key of the highest seq a removal took from the
// feed's end.
const metaFeedEnd = "feed_end"

// feedEnd returns the last seq given out: the highest of the events
// stored and of the feed ends removals recorded.
func (s *Store) feedEnd(ctx context.Context) (uint64, error) {
	var stored, removed uint64
	if err := s.conn.QueryRow(ctx, "SELECT max(seq) FROM "+s.table("events")).Scan(&stored); err != nil {
		return 0, err
	}
	if err := s.conn.QueryRow(ctx, "SELECT max(toUInt64OrZero(value)) FROM "+s.table("meta")+" WHERE key = ?", metaFeedEnd).Scan(&removed); err != nil {
		return 0, err
	}
	return max(stored, removed), nil
}
