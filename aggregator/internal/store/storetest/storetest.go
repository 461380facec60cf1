// Package storetest is the conformance suite of store.Store: the promises of
// package store, each checked on a real backend against a reference model
// (Reference, ReferenceStats, and the order events were ingested in).
// Every backend's tests call Run. The retention tests run for a backend
// that implements store.Expirer and are skipped for one that does not.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
//			... open a new, empty store, and return how to open its data again
//		})
//	}
//
// A backend's own properties (its layout, migrations, what survives a crash,
// costs) are tested in its package; the helpers here (datasets, the reference
// model, CheckStored) serve those tests too, and the backends' BenchmarkBig
// share the big store's events and queries (BigBatches, Big).
package storetest

import (
	"testing"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// Open returns a new, empty store and reopen, which opens another store on
// the same data, as a restart of the process would: the suite closes s
// before it calls reopen, and may call reopen again after closing what it
// returned. Open should close what it and reopen opened at the end of t;
// closing a closed store is harmless.
type Open func(t *testing.T) (s store.Store, reopen func() store.Store)

// Run runs the whole suite, one subtest a promise.
func Run(t *testing.T, open Open) { run(t, open, false) }

// RunParallel runs the suite with its subtests in parallel (as many at once
// as go test's -parallel allows), for a backend whose calls mostly wait on
// a server and whose stores share nothing (store/clickhouse: a database
// each). open must be safe for concurrent use.
func RunParallel(t *testing.T, open Open) { run(t, open, true) }

func run(t *testing.T, open Open, parallel bool) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Open)
	}{
		{"IngestGet", testIngestGet},
		{"IngestDuplicates", testIngestDuplicates},
		{"IngestConcurrent", testIngestConcurrent},
		{"IngestRejections", testIngestRejections},
		{"IngestCanceled", testIngestCanceled},
		{"Restart", testRestart},
		{"Closed", testClosed},
		{"Query", testQuery},
		{"QueryTimeBounds", testQueryTimeBounds},
		{"QueryPaging", testQueryPaging},
		{"QueryPagingWhileIngesting", testQueryPagingWhileIngesting},
		{"QueryBadCursor", testQueryBadCursor},
		{"Count", testCount},
		{"QueryOffset", testQueryOffset},
		{"QueryOffsetErrors", testQueryOffsetErrors},
		{"Stats", testStats},
		{"StatsTimes", testStatsTimes},
		{"StatsConcurrent", testStatsConcurrent},
		{"IDPrefix", testIDPrefix},
		{"Export", testExport},
		{"ExportFilters", testExportFilters},
		{"ExportWaits", testExportWaits},
		{"ExportCursorErrors", testExportCursorErrors},
		{"Erase", testErase},
		{"EraseConcurrent", testEraseConcurrent},
		{"EraseFeedEnd", testEraseFeedEnd},
		{"Retention", testRetention},
		{"RetentionWhileIngesting", testRetentionWhileIngesting},
		{"RetentionAll", testRetentionAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			tc.test(t, open)
		})
	}
}

// openEmpty opens a new store of the backend when the test does not restart
// it.
func openEmpty(t *testing.T, open Open) store.Store {
	t.Helper()
	s, _ := open(t)
	return s
}
