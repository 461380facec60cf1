package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// maxExportScan bounds the stored events one Export passes over looking for
// matches, so that a filtered read of a large feed answers in bounded time;
// Next then points past what it scanned.
const maxExportScan = 100_000

// The feed's position is a sequence number given to each stored event at
// ingest, in the order of the batches' commits and, within a batch, in the
// order of the events given to Ingest. Keys 'x' seq(8, big-endian) → id; an
// erasure empties the value of its events' entries.
const (
	ksFeed     = 'x'
	storeIDKey = "mid" // 8 random bytes naming this database, in cursors
)

func feedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{ksFeed}, seq)
}

// feedCursor is base64url of version(1) store id(8) seq(8): the position
// after which a read continues. The store id makes a cursor of another
// database (a data directory replaced, another aggregator's) an error
// instead of a silent skip or repeat.
type feedCursor struct {
	store [8]byte
	seq   uint64
}

const feedCursorVersion = 1

func (c feedCursor) encode() string {
	b := make([]byte, 0, 17)
	b = append(b, feedCursorVersion)
	b = append(b, c.store[:]...)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeFeedCursor reads a cursor of the store with id storeID.
func decodeFeedCursor(s string, storeID [8]byte) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != feedCursorVersion {
		return 0, fmt.Errorf("%w: not an export cursor", store.ErrBadCursor)
	}
	if !bytes.Equal(b[1:9], storeID[:]) {
		return 0, fmt.Errorf("%w: the cursor is from another store (was the data directory replaced?); start again without one", store.ErrBadCursor)
	}
	return binary.BigEndian.Uint64(b[9:]), nil
}

// Export implements store.Store.
func (p *Store) Export(ctx context.Context, q store.ExportQuery) (store.ExportResult, error) {
	return store.LongPoll(ctx, q, p.storedSignal, 0, p.closing, p.export)
}

// export is one read of the feed, without waiting.
func (p *Store) export(ctx context.Context, q store.ExportQuery) (store.ExportResult, error) {
	if err := p.acquire(); err != nil {
		return store.ExportResult{}, err
	}
	defer p.release()
	after, err := decodeFeedCursor(q.After, p.storeID)
	if err != nil {
		return store.ExportResult{}, err
	}
	limit := q.PageSize()
	res := store.ExportResult{Next: feedCursor{store: p.storeID, seq: after}.encode()}
	if !store.ValidFilter(q.Session) || !store.ValidFilter(q.Category) || !store.ValidFilter(q.Name) {
		// Nothing can match; pass over the feed as it is now.
		res.Next = feedCursor{store: p.storeID, seq: max(after, p.lastSeq.Load())}.encode()
		return res, nil
	}
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: feedKey(after + 1), UpperBound: []byte{ksFeed + 1}})
	if err != nil {
		return store.ExportResult{}, fmt.Errorf("store: export: %w", err)
	}
	defer it.Close()
	idKey := []byte{ksEvent}
	last := after
	scanned := 0
	for valid := it.First(); valid && len(res.Events) < limit && scanned < maxExportScan; valid = it.Next() {
		if scanned++; scanned%256 == 0 {
			if err := ctx.Err(); err != nil {
				return store.ExportResult{}, err
			}
		}
		k := it.Key()
		if len(k) != 9 {
			return store.ExportResult{}, fmt.Errorf("store: export: malformed feed key %q", k)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return store.ExportResult{}, fmt.Errorf("store: export: %w", err)
		}
		if len(v) == 0 { // emptied by an erasure
			last = binary.BigEndian.Uint64(k[1:])
			continue
		}
		idKey = append(idKey[:1], v...)
		ev, err := p.get(p.db, idKey)
		last = binary.BigEndian.Uint64(k[1:])
		if errors.Is(err, store.ErrNotFound) {
			continue // removed by retention (Expire) or an erasure: passed over
		}
		if err != nil {
			return store.ExportResult{}, fmt.Errorf("store: export: %w", err)
		}
		if q.Matches(ev) {
			res.Events = append(res.Events, ev)
		}
	}
	if err := it.Error(); err != nil {
		return store.ExportResult{}, fmt.Errorf("store: export: %w", err)
	}
	res.Next = feedCursor{store: p.storeID, seq: last}.encode()
	return res, nil
}

// storedSignal returns a channel that is closed when events are next stored.
func (p *Store) storedSignal() <-chan struct{} {
	p.signalMu.Lock()
	defer p.signalMu.Unlock()
	return p.signal
}

// notifyStored wakes the Export calls waiting for events.
func (p *Store) notifyStored() {
	p.signalMu.Lock()
	defer p.signalMu.Unlock()
	close(p.signal)
	p.signal = make(chan struct{})
}

// loadFeed reads the store's id and the last sequence number given out.
func loadFeed(db *pebbledb.DB) (id [8]byte, last uint64, err error) {
	v, closer, err := db.Get([]byte(storeIDKey))
	if err != nil {
		return id, 0, fmt.Errorf("read store id: %w", err)
	}
	if len(v) != len(id) {
		closer.Close()
		return id, 0, fmt.Errorf("store id is %d bytes, want %d", len(v), len(id))
	}
	copy(id[:], v)
	closer.Close()
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{ksFeed}, UpperBound: []byte{ksFeed + 1}})
	if err != nil {
		return id, 0, err
	}
	defer it.Close()
	if it.Last() {
		if k := it.Key(); len(k) == 9 {
			last = binary.BigEndian.Uint64(k[1:])
		}
	}
	return id, last, it.Error()
}

// newStoreID writes a fresh random store id into b.
func newStoreID(b *pebbledb.Batch) error {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	return b.Set([]byte(storeIDKey), id[:], nil)
}

// migrateFeed builds the feed of a layout-2 database, which had none: its
// events get sequence numbers oldest event time first (the order they were
// stored in is not known), and the database an id.
func migrateFeed(db *pebbledb.DB, log *slog.Logger) error {
	began := time.Now()
	if err := db.DeleteRange([]byte{ksFeed}, []byte{ksFeed + 1}, pebbledb.NoSync); err != nil {
		return fmt.Errorf("clear feed: %w", err)
	}
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{ksTime}, UpperBound: []byte{ksTime + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	var seq uint64
	for valid := it.Last(); valid; valid = it.Prev() {
		k := it.Key()
		seq++
		if err := b.Set(feedKey(seq), k[1+timeLen:], nil); err != nil {
			return err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebbledb.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := newStoreID(b); err != nil {
		return err
	}
	// A synced write makes every earlier write durable too.
	if err := b.Set([]byte(layoutKey), []byte(layoutVersion), nil); err != nil {
		return err
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return err
	}
	log.Info("store migrated to key layout 3: export feed built", "events", seq, "took", time.Since(began))
	return nil
}
