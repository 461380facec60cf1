package registry

import (
	"context"
	"time"
)

// storage is where the registry's durable state lives: files under
// <aggregator.data_dir>/rules (fileStorage, files.go), or tables in the
// ClickHouse database several aggregators share (chStorage, clickhouse.go).
// The package doc's Storage section gives both layouts.
//
// The state is a log of entries (AuditEntry) at positions 0, 1, 2, …, plus
// content-addressed modules and vectors and the edges' last reports. An
// entry counts only when it is at the position its writer claimed (append's
// at): a writer that read the log to position n and decided on the state
// there appends at n, and when another writer got n first, its entry lands
// later and counts for nothing. Every reader applies that rule, so every
// registry on one storage replays the same entries in the same order.
//
// The registry calls entries, append and writeIndex while holding its
// writeMu, so one at a time; the other methods may run concurrently.
type storage interface {
	// load returns what is stored, for Open.
	load(ctx context.Context) (stored, error)
	// entries returns the entries that count among positions from, from+1,
	// …, and the position after the last one.
	entries(ctx context.Context, from int64) ([]AuditEntry, int64, error)
	// append writes e at the log's end, claiming position at, and reports
	// whether e is there. When it is not, another writer appended first: e
	// counts for nothing, and the caller reads the entries it missed and
	// decides again.
	append(ctx context.Context, at int64, e AuditEntry) (bool, error)

	// putModule and putVectors store bytes by their hash, unless stored.
	putModule(ctx context.Context, hash string, wasm []byte) error
	putVectors(ctx context.Context, hash string, json []byte) error
	// module returns a module's bytes as stored (the caller checks the
	// hash); moduleInfo its size and when it was stored.
	module(ctx context.Context, hash string) ([]byte, error)
	moduleInfo(ctx context.Context, hash string) (int, time.Time, error)

	// writeIndex records the index for the next load; a storage that
	// replays it from the log does nothing.
	writeIndex(idx *index) error
	// saveReport records an edge's last status report.
	saveReport(ctx context.Context, edge string, rep edgeReport) error
	// reports returns the reports newer than those in have (edge → its
	// report's time) that other aggregators recorded.
	reports(ctx context.Context, have map[string]time.Time) (map[string]*edgeReport, error)

	// shared reports whether other aggregators write to the storage too,
	// so that the registry must follow it.
	shared() bool
	close() error
}

// stored is what a storage holds when the registry opens.
type stored struct {
	// index is the index as last written, or nil when the storage keeps
	// none (the log is then all there is).
	index *index
	log   []AuditEntry // the entries that count, in order
	end   int64        // the position after the last entry
	edges map[string]*edgeReport
}
