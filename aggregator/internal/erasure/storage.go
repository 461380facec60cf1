package erasure

import (
	"context"
	"time"
)

// storage is where the erasure state lives: files under
// <aggregator.data_dir>/erasure (fileStorage, files.go), or tables in the
// ClickHouse database several aggregators share (chStorage, clickhouse.go).
// The package doc's Storage section gives both layouts.
//
// Erasures calls load once, at Open, and suppress and read while holding
// its followMu, so one at a time; the other methods may run concurrently.
type storage interface {
	// load returns the audit records, oldest first.
	load(ctx context.Context) ([]Record, error)
	// suppress appends r, a suppress record, and returns its seq and the
	// records that are new to the caller, r among them, in order. next is
	// the seq r gets when nobody else appends.
	suppress(ctx context.Context, r Record, next uint64) (uint64, []Record, error)
	// append appends r, an erase record of an erasure suppress numbered.
	append(ctx context.Context, r Record) error
	// read returns the records other aggregators appended since load, the
	// last suppress or the last read; nil for a storage nobody else writes.
	read(ctx context.Context) ([]Record, error)

	// writeTombstone stores t durably; tombstones returns those with a
	// seq after after, oldest first, up to limit.
	writeTombstone(ctx context.Context, t Tombstone) error
	tombstones(ctx context.Context, after uint64, limit int) ([]Tombstone, error)
	// removeTombstones removes the tombstones of the erasures old names
	// (by seq, with their time) and returns the seqs it removed.
	removeTombstones(ctx context.Context, old map[uint64]time.Time) ([]uint64, error)

	// ack records that this aggregator suppresses the subjects of the
	// erasures up to seen; lagging returns the other live aggregators
	// (acknowledged after since) that have not acknowledged seq. A storage
	// nobody else writes does nothing and names none.
	ack(ctx context.Context, seen uint64, now time.Time) error
	lagging(ctx context.Context, seq uint64, since time.Time) ([]string, error)

	// shared reports whether other aggregators write to the storage too.
	shared() bool
	close() error
}
