package pebble

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
)

// TestPlan pins which index each combination of filters scans: the most
// selective one.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		q  store.Query
		ks byte
	}{
		{store.Query{}, ksTime},
		{store.Query{Start: time.Unix(5, 0), End: time.Unix(9, 0)}, ksTime},
		{store.Query{Session: "s"}, ksSession},
		{store.Query{Session: "s", Category: "c"}, ksSession},
		{store.Query{Session: "s", Name: "n"}, ksSession},
		{store.Query{Session: "s", Category: "c", Name: "n", Start: time.Unix(5, 0)}, ksSession},
		{store.Query{Category: "c", Name: "n"}, ksCatName},
		{store.Query{Category: "c"}, ksCategory},
		{store.Query{Name: "n", End: time.Unix(9, 0)}, ksName},
		{store.Query{Session: "s\x00"}, ksSession},
		{store.Query{Category: "c\x00n"}, ksCategory},
		{store.Query{Name: strings.Repeat("n", store.MaxValueLen+1)}, ksName},
	} {
		if ks := planQuery(tc.q).ks; ks != tc.ks {
			t.Errorf("%+v: plan uses index %q, want %q", tc.q, ks, tc.ks)
		}
	}
}

// TestQueryCursorEncoding damages a cursor in the ways its wire format can
// tell: each is refused with ErrBadCursor.
func TestQueryCursorEncoding(t *testing.T) {
	s := openMem(t)
	storetest.Ingest(t, s, storetest.Dataset(200, 2)...)
	q := store.Query{Session: "s1", Limit: 3}
	res, err := s.Query(context.Background(), q)
	if err != nil || res.Next == "" {
		t.Fatalf("no cursor (err %v)", err)
	}
	b, err := base64.RawURLEncoding.DecodeString(res.Next)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for name, cursor := range map[string]string{
		"padded base64":   res.Next + "==",
		"unknown version": enc(append([]byte{2}, b[1:]...)),
		"truncated":       enc(b[:cursorHeader+timeLen]),
		"id too long":     enc(append(b, strings.Repeat("x", 300)...)),
		"NUL in id":       enc(append(b, 0)),
		"other index":     enc(append([]byte{b[0], ksCategory}, b[2:]...)),
	} {
		q.Cursor = cursor
		if _, err := s.Query(context.Background(), q); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%s: err = %v, want ErrBadCursor", name, err)
		}
	}
}

// FuzzQueryCursor feeds arbitrary cursors to Query: each is either rejected
// with ErrBadCursor or answered with a page of matching events.
func FuzzQueryCursor(f *testing.F) {
	s := openMem(f)
	storetest.Ingest(f, s, storetest.Dataset(100, 9)...)
	queries := []store.Query{{}, {Session: "s1"}, {Category: "view", Name: "home"}, {Name: "a"}, {Category: "buy"}}
	for _, q := range queries {
		q.Limit = 2
		res, err := s.Query(context.Background(), q)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(res.Next, uint8(0))
	}
	f.Add("", uint8(1))
	f.Add("AQ", uint8(2))
	f.Add("AXMAAAAAAAAAAP____________9h", uint8(1))
	f.Fuzz(func(t *testing.T, cursor string, which uint8) {
		q := queries[int(which)%len(queries)]
		q.Cursor = cursor
		q.Limit = 5
		res, err := s.Query(context.Background(), q)
		if err != nil {
			if !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("err = %v, want nil or ErrBadCursor", err)
			}
			return
		}
		for _, ev := range res.Events {
			if !q.Matches(ev) {
				t.Fatalf("event %q does not match %+v", ev.GetId(), q)
			}
		}
	})
}
