package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

func TestConfigValidate(t *testing.T) {
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("empty Config is valid")
	}
	for _, field := range []string{"CollectorURL", "SharedSecret", "DeviceID", "ClientID", "SystemVersion", "ProductVersion", "Dir"} {
		if !strings.Contains(err.Error(), "client: config: "+field+": required") {
			t.Errorf("error does not report missing %s:\n%v", field, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty Config")
	}

	for _, tc := range []struct {
		name, field string
		edit        func(*Config)
	}{
		{"ftp URL", "CollectorURL", func(c *Config) { c.CollectorURL = "ftp://edge" }},
		{"URL without host", "CollectorURL", func(c *Config) { c.CollectorURL = "http:///x" }},
		{"negative queue size", "QueueSize", func(c *Config) { c.QueueSize = -1 }},
		{"negative retention", "QueueRetention", func(c *Config) { c.QueueRetention = -time.Minute }},
		{"backoff min above max", "BackoffMin", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second }},
		{"negative batch", "MaxPayloadsPerRequest", func(c *Config) { c.MaxPayloadsPerRequest = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1")
			if err := cfg.Validate(); err != nil {
				t.Fatalf("base config invalid: %v", err)
			}
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), "client: config: "+tc.field+": ") {
				t.Fatalf("Validate = %v, want an error about %s", err, tc.field)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.QueueSize != 20 || d.QueueRetention != 1440*time.Minute || d.HTTPClient.Timeout != 10*time.Second ||
		d.Clock == nil || d.BackoffMin != time.Second || d.BackoffMax != 5*time.Minute ||
		d.MaxPayloadsPerRequest != 1000 || d.Logger == nil {
		t.Errorf("defaults = %+v", d)
	}
	for _, tc := range []struct {
		min, max, wantMin, wantMax time.Duration
	}{
		{0, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond},
		{10 * time.Minute, 0, 10 * time.Minute, 10 * time.Minute},
		{2 * time.Second, 0, 2 * time.Second, 5 * time.Minute},
	} {
		d := Config{BackoffMin: tc.min, BackoffMax: tc.max}.withDefaults()
		if d.BackoffMin != tc.wantMin || d.BackoffMax != tc.wantMax {
			t.Errorf("backoff %v/%v became %v/%v, want %v/%v", tc.min, tc.max, d.BackoffMin, d.BackoffMax, tc.wantMin, tc.wantMax)
		}
	}
}

func TestTrackEndpoint(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"http://edge:8080", "http://edge:8080/api/v1/track"},
		{"http://edge:8080/", "http://edge:8080/api/v1/track"},
		{"https://edge/prefix", "https://edge/prefix/api/v1/track"},
		{"https://edge/api/v1/track", "https://edge/api/v1/track"},
		{"https://edge/api/v1/track/", "https://edge/api/v1/track"},
		{"https://edge/prefix/api/v1/track", "https://edge/prefix/api/v1/track"},
	} {
		got, err := trackEndpoint(tc.base)
		if err != nil || got != tc.want {
			t.Errorf("trackEndpoint(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
}

// One Flush sends one signed Collection with the tracker's attributes and
// the events' fields, and deletes the events after the 200.
func TestFlushSendsCollection(t *testing.T) {
	c := newCollector(t, testSecret)
	clock := newFakeClock()
	cfg := testConfig(t, c.URL())
	cfg.Clock = clock.Now
	cfg.IP = "10.1.2.3"
	tr := newTracker(t, cfg)

	ctx := context.Background()
	if err := tr.TrackEvent(ctx, "app_open", 0, "", false); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Second)
	tr.SetIP("")
	if err := tr.TrackEvent(ctx, "purchase", 42, `{"sku":"A1"}`, true); err != nil {
		t.Fatal(err)
	}
	wantPending(t, tr, 2)
	if err := tr.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if r := c.next(t); r.Status != 200 {
		t.Fatalf("collector answered %d", r.Status)
	}
	wantPending(t, tr, 0)

	got := c.accepted()
	if len(got) != 1 {
		t.Fatalf("collector accepted %d collections, want 1", len(got))
	}
	at := uint64(clock.Now().Unix())
	want := &hamustropb.Collection{
		DeviceId:       proto.String(HashDeviceID("device-1")),
		ClientId:       proto.String("client-1"),
		Session:        proto.String(SessionID("device-1", "client-1", "17.4", "2.3.0")),
		SystemVersion:  proto.String("17.4"),
		ProductVersion: proto.String("2.3.0"),
		System:         proto.String("ios"),
		ProductGitHash: proto.String("abc123"),
		Payloads: []*hamustropb.Payload{
			{At: proto.Uint64(at - 2), Event: proto.String("app_open"), Nr: proto.Uint32(1), Ip: proto.String("10.1.2.3"), IsTesting: proto.Bool(false)},
			{At: proto.Uint64(at), Event: proto.String("purchase"), Nr: proto.Uint32(2), UserId: proto.Uint32(42), Parameters: proto.String(`{"sku":"A1"}`), IsTesting: proto.Bool(true)},
		},
	}
	if !proto.Equal(got[0], want) {
		t.Errorf("collection:\n got %v\nwant %v", got[0], want)
	}
	if tr.Session() != want.GetSession() {
		t.Errorf("Session() = %s, want %s", tr.Session(), want.GetSession())
	}

	st := tr.Stats()
	if st.Sent != 2 || st.Requests != 1 || st.FailedRequests != 0 || !st.LastSync.Equal(clock.Now()) {
		t.Errorf("Stats = %+v, want 2 sent in 1 request, last sync %v", st, clock.Now())
	}
	last, err := tr.LoadLastSyncTime()
	if err != nil || !last.Equal(clock.Now()) {
		t.Errorf("LoadLastSyncTime = %v, %v; want %v", last, err, clock.Now())
	}

	// Nothing left: Flush posts nothing.
	if err := tr.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if n := c.requests(); n != 1 {
		t.Errorf("collector saw %d requests, want 1", n)
	}
}

func TestTrackEventRejects(t *testing.T) {
	tr := newTracker(t, testConfig(t, "http://127.0.0.1:1"))
	ctx := context.Background()
	for _, tc := range []struct {
		name, event, params string
	}{
		{"empty event", "", ""},
		{"event not UTF-8", "ev\xff", ""},
		{"params not UTF-8", "ev", "\xfe"},
	} {
		if err := tr.TrackEvent(ctx, tc.event, 0, tc.params, false); err == nil {
			t.Errorf("%s: TrackEvent accepted it", tc.name)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := tr.TrackEvent(cancelled, "ev", 0, "", false); !errors.Is(err, context.Canceled) {
		t.Errorf("TrackEvent with a cancelled context = %v", err)
	}
	wantPending(t, tr, 0)
	// Rejected events use up no nr.
	trackN(t, tr, 1)
	if m, _ := tr.LoadNumberPerSession(); m[tr.Session()] != 1 {
		t.Errorf("numbers = %v, want 1 for %s", m, tr.Session())
	}
}

func TestNumberingContinuesAcrossRestarts(t *testing.T) {
	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())

	tr := newTracker(t, cfg)
	trackN(t, tr, 3)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	tr = newTracker(t, cfg)
	wantPending(t, tr, 3)
	trackN(t, tr, 2)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Sending does not reset the count either.
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = newTracker(t, cfg)
	trackN(t, tr, 1)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	wantAcceptedOnce(t, c, tr.Session(), 6)
	m, err := tr.LoadNumberPerSession()
	if err != nil || m[tr.Session()] != 6 || len(m) != 1 {
		t.Errorf("LoadNumberPerSession = %v, %v; want {%s: 6}", m, err, tr.Session())
	}
}

// Events of an older session (an app update between tracking and sending)
// are sent in their own Collection with their own attributes and numbering.
func TestSessionsAreSentSeparately(t *testing.T) {
	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())

	old := newTracker(t, cfg)
	trackN(t, old, 2)
	oldSession := old.Session()
	old.Close()

	cfg.ProductVersion = "2.4.0"
	cfg.ProductGitHash = "def456"
	tr := newTracker(t, cfg)
	if tr.Session() == oldSession {
		t.Fatal("a new product version kept the session")
	}
	trackN(t, tr, 3)
	colls, err := tr.LoadCollections()
	if err != nil || len(colls) != 2 {
		t.Fatalf("LoadCollections = %d collections, %v; want 2", len(colls), err)
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	bySession := make(map[string]*hamustropb.Collection)
	for _, coll := range c.accepted() {
		bySession[coll.GetSession()] = coll
	}
	for _, tc := range []struct {
		session, version, hash string
		nrs                    []uint32
	}{
		{oldSession, "2.3.0", "abc123", seq(2)},
		{tr.Session(), "2.4.0", "def456", seq(3)},
	} {
		coll := bySession[tc.session]
		if coll == nil {
			t.Errorf("session %s not sent", tc.session)
			continue
		}
		if coll.GetProductVersion() != tc.version || coll.GetProductGitHash() != tc.hash || coll.GetDeviceId() != HashDeviceID("device-1") {
			t.Errorf("session %s sent with %s/%s/%s, want version %s hash %s", tc.session,
				coll.GetDeviceId(), coll.GetProductVersion(), coll.GetProductGitHash(), tc.version, tc.hash)
		}
		if got := payloadNrs(coll.GetPayloads()); !slices.Equal(got, tc.nrs) {
			t.Errorf("session %s sent nrs %v, want %v", tc.session, got, tc.nrs)
		}
	}
	wantPending(t, tr, 0)
}

func TestLargeQueueIsSentInChunks(t *testing.T) {
	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())
	cfg.MaxPayloadsPerRequest = 4
	tr := newTracker(t, cfg)
	trackN(t, tr, 10)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, coll := range c.accepted() {
		sizes = append(sizes, len(coll.GetPayloads()))
	}
	if !slices.Equal(sizes, []int{4, 4, 2}) {
		t.Errorf("request sizes %v, want [4 4 2]", sizes)
	}
	wantAcceptedOnce(t, c, tr.Session(), 10)
	wantPending(t, tr, 0)
}

func TestQueueSizeTrigger(t *testing.T) {
	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())
	cfg.QueueSize = 5
	tr := newTracker(t, cfg)

	trackN(t, tr, 4)
	quiesce(t, tr)
	if n := c.requests(); n != 0 {
		t.Fatalf("%d requests with 4 of 5 queued, want none", n)
	}

	trackN(t, tr, 1) // the 5th
	r := c.next(t)
	if got := payloadNrs(r.Collection.GetPayloads()); r.Status != 200 || !slices.Equal(got, seq(5)) {
		t.Fatalf("triggered request: status %d nrs %v, want 200 with 1..5", r.Status, got)
	}
	quiesce(t, tr)
	wantPending(t, tr, 0)

	// The count starts again from zero.
	trackN(t, tr, 4)
	quiesce(t, tr)
	if n := c.requests(); n != 1 {
		t.Fatalf("%d requests after 4 more events, want 1", n)
	}
	trackN(t, tr, 1)
	r = c.next(t)
	if got := payloadNrs(r.Collection.GetPayloads()); !slices.Equal(got, []uint32{6, 7, 8, 9, 10}) {
		t.Fatalf("second triggered request sent nrs %v, want 6..10", got)
	}
	quiesce(t, tr)
	wantAcceptedOnce(t, c, tr.Session(), 10)
}

func TestRetentionTrigger(t *testing.T) {
	c := newCollector(t, testSecret)
	clock := newFakeClock()
	cfg := testConfig(t, c.URL())
	cfg.Clock = clock.Now
	cfg.QueueRetention = time.Hour
	start := clock.Now()
	tr := newTracker(t, cfg)
	if st := tr.Stats(); !st.LastSync.Equal(start) {
		t.Fatalf("never-synced LastSync = %v, want the first open %v", st.LastSync, start)
	}

	trackN(t, tr, 1)
	clock.Add(time.Hour) // last sync is exactly QueueRetention old: not yet
	trackN(t, tr, 1)
	quiesce(t, tr)
	if n := c.requests(); n != 0 {
		t.Fatalf("%d requests at exactly the retention, want none", n)
	}

	// A restart does not restart the retention clock.
	tr.Close()
	tr = newTracker(t, cfg)

	clock.Add(time.Second)
	trackN(t, tr, 1)
	r := c.next(t)
	if got := payloadNrs(r.Collection.GetPayloads()); r.Status != 200 || !slices.Equal(got, seq(3)) {
		t.Fatalf("triggered request: status %d nrs %v, want 200 with 1..3", r.Status, got)
	}
	quiesce(t, tr)
	wantPending(t, tr, 0)
	if st := tr.Stats(); !st.LastSync.Equal(clock.Now()) {
		t.Errorf("LastSync = %v, want %v", st.LastSync, clock.Now())
	}

	// The sync restarted the retention clock.
	clock.Add(time.Hour)
	trackN(t, tr, 1)
	quiesce(t, tr)
	if n := c.requests(); n != 1 {
		t.Fatalf("%d requests within the retention after a sync, want 1", n)
	}
}

// The collector failing in each way keeps every event; the next successful
// attempt delivers all of them exactly once.
func TestFailuresKeepEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int // collector answer; 0: hang
		dead   bool
	}{
		{"401", 401, false},
		{"500", 500, false},
		{"503", 503, false},
		{"204", 204, false},
		{"timeout", 0, false},
		{"connection refused", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t, testSecret)
			cfg := testConfig(t, c.URL())
			if tc.dead {
				cfg.CollectorURL = deadURL(t)
			}
			if tc.status == 0 && !tc.dead {
				c.hang()
				cfg.HTTPClient.Timeout = 200 * time.Millisecond
			} else {
				c.answer(tc.status)
			}
			tr := newTracker(t, cfg)
			trackN(t, tr, 5)

			err := tr.Flush(context.Background())
			if err == nil {
				t.Fatal("Flush succeeded")
			}
			var se *StatusError
			if tc.status != 0 && (!errors.As(err, &se) || se.StatusCode != tc.status || se.Session != tr.Session()) {
				t.Fatalf("Flush = %v, want a StatusError %d for %s", err, tc.status, tr.Session())
			}
			if tc.status >= 400 && !strings.Contains(err.Error(), "collector says") {
				t.Errorf("error %q does not carry the response body", err)
			}
			if !tc.dead {
				c.next(t) // the failed request has been seen and answered
			}
			wantPending(t, tr, 5)
			if st := tr.Stats(); st.Sent != 0 || st.FailedRequests != 1 || st.BackoffUntil.IsZero() {
				t.Errorf("Stats after failure = %+v, want 1 failed request and a backoff", st)
			}

			trackN(t, tr, 1) // the 6th, queued during the outage
			c.answer(200)
			if tc.dead {
				tr.Close()
				cfg.CollectorURL = c.URL()
				tr = newTracker(t, cfg)
			} else {
				cfg.HTTPClient.Timeout = 30 * time.Second
			}
			if err := tr.Flush(context.Background()); err != nil {
				t.Fatalf("Flush after recovery: %v", err)
			}
			wantAcceptedOnce(t, c, tr.Session(), 6)
			wantPending(t, tr, 0)
			if st := tr.Stats(); !st.BackoffUntil.IsZero() {
				t.Errorf("backoff not cleared by a success: %+v", st)
			}
		})
	}
}

// deadURL is a loopback URL nobody listens on.
func deadURL(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

func TestBackoff(t *testing.T) {
	c := newCollector(t, testSecret)
	clock := newFakeClock()
	cfg := testConfig(t, c.URL())
	cfg.Clock = clock.Now
	cfg.QueueSize = 3
	cfg.BackoffMin = time.Second
	cfg.BackoffMax = time.Minute
	c.answer(500)
	tr := newTracker(t, cfg)

	trackN(t, tr, 3) // triggers; fails
	if r := c.next(t); r.Status != 500 {
		t.Fatalf("first triggered request answered %d", r.Status)
	}
	quiesce(t, tr)
	st := tr.Stats()
	if !st.BackoffUntil.After(clock.Now()) || st.BackoffUntil.After(clock.Now().Add(cfg.BackoffMax)) {
		t.Fatalf("BackoffUntil = %v, want within (now, now+%v]", st.BackoffUntil, cfg.BackoffMax)
	}

	// Within the backoff window triggers send nothing, though the queue is
	// over QueueSize.
	trackN(t, tr, 2)
	quiesce(t, tr)
	if n := c.requests(); n != 1 {
		t.Fatalf("%d requests during backoff, want 1", n)
	}

	// After the window, the next trigger sends again (and fails again,
	// backing off further).
	clock.Add(cfg.BackoffMax + time.Second)
	trackN(t, tr, 1)
	if r := c.next(t); r.Status != 500 || len(r.Collection.GetPayloads()) != 6 {
		t.Fatalf("request after backoff: status %d with %d payloads, want 500 with 6", r.Status, len(r.Collection.GetPayloads()))
	}
	quiesce(t, tr)
	if st := tr.Stats(); !st.BackoffUntil.After(clock.Now()) {
		t.Fatalf("no backoff after the second failure: %+v", st)
	}

	// Flush ignores the backoff; a success ends it and sends everything.
	c.answer(200)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAcceptedOnce(t, c, tr.Session(), 6)
	trackN(t, tr, 3)
	if r := c.next(t); r.Status != 200 {
		t.Fatalf("trigger after recovery answered %d", r.Status)
	}
	quiesce(t, tr)
	wantAcceptedOnce(t, c, tr.Session(), 9)
}

func TestBackoffDelay(t *testing.T) {
	lo, hi := time.Second, time.Minute
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{6, 16 * time.Second, 32 * time.Second},
		{7, 30 * time.Second, time.Minute},
		{1000, 30 * time.Second, time.Minute},
	} {
		if got := backoffDelay(tc.n, lo, hi, lowest); got != tc.min {
			t.Errorf("backoffDelay(%d) lowest = %v, want %v", tc.n, got, tc.min)
		}
		if got := backoffDelay(tc.n, lo, hi, highest); got != tc.max {
			t.Errorf("backoffDelay(%d) highest = %v, want %v", tc.n, got, tc.max)
		}
	}
	huge := time.Duration(1<<62 + 1<<61)
	if got := backoffDelay(100, time.Hour, huge, highest); got != huge {
		t.Errorf("backoffDelay near the Duration limit = %v, want %v", got, huge)
	}
}

// Many goroutines tracking at once, while background sends run and delete,
// get unique, gap-free nrs, and each event is delivered exactly once.
func TestConcurrentTrackEvent(t *testing.T) {
	const goroutines, perGoroutine = 16, 50
	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())
	cfg.fs = vfs.NewMem() // hammer the locking, not the disk
	cfg.Dir = "db"
	cfg.QueueSize = 7
	cfg.MaxPayloadsPerRequest = 5
	tr := newTracker(t, cfg)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				if err := tr.TrackEvent(context.Background(), fmt.Sprintf("g%d-%d", g, i), uint32(g), "", false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	quiesce(t, tr)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	const total = goroutines * perGoroutine
	wantAcceptedOnce(t, c, tr.Session(), total)
	wantPending(t, tr, 0)
	if st := tr.Stats(); st.Sent != total {
		t.Errorf("Stats().Sent = %d, want %d", st.Sent, total)
	}
	// Each goroutine's events got increasing nrs in the order it tracked them.
	nrOf := make(map[[2]int]uint32)
	for _, coll := range c.accepted() {
		for _, p := range coll.GetPayloads() {
			var g, i int
			if _, err := fmt.Sscanf(p.GetEvent(), "g%d-%d", &g, &i); err != nil {
				t.Fatalf("event %q: %v", p.GetEvent(), err)
			}
			nrOf[[2]int{g, i}] = p.GetNr()
		}
	}
	for g := range goroutines {
		for i := 1; i < perGoroutine; i++ {
			if a, b := nrOf[[2]int{g, i - 1}], nrOf[[2]int{g, i}]; a >= b {
				t.Errorf("goroutine %d: event %d got nr %d, event %d got nr %d", g, i-1, a, i, b)
			}
		}
	}
}

func TestClosed(t *testing.T) {
	tr, err := New(testConfig(t, "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tr.TrackEvent(ctx, "ev", 0, "", false); !errors.Is(err, ErrClosed) {
		t.Errorf("TrackEvent after Close = %v", err)
	}
	if err := tr.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
	if _, err := tr.LoadCollections(); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadCollections after Close = %v", err)
	}
	if err := tr.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

// Close aborts a hung background send without losing its events.
func TestCloseAbortsHungSend(t *testing.T) {
	c := newCollector(t, testSecret)
	c.hang()
	cfg := testConfig(t, c.URL())
	cfg.QueueSize = 2
	tr := newTracker(t, cfg)
	trackN(t, tr, 2)
	c.waitRequests(t, 1) // the request is in flight and hangs
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	c.answer(200)
	tr = newTracker(t, cfg)
	wantPending(t, tr, 2)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAcceptedOnce(t, c, tr.Session(), 2)
}

// A collector's Retry-After extends the backoff, up to BackoffMax.
func TestRetryAfterExtendsBackoff(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.Clock = clock.Now
	cfg.BackoffMin, cfg.BackoffMax = time.Second, time.Minute
	tr := newTracker(t, cfg)
	failed := errors.New("failed")
	for _, tc := range []struct{ retryAfter, want time.Duration }{
		{30 * time.Second, 30 * time.Second},
		{time.Hour, time.Minute},
	} {
		tr.recordRound(failed, tc.retryAfter)
		if got := tr.Stats().BackoffUntil.Sub(clock.Now()); got < tc.want || got > cfg.BackoffMax {
			t.Errorf("Retry-After %v: backoff %v, want in [%v, %v]", tc.retryAfter, got, tc.want, cfg.BackoffMax)
		}
	}
	tr.recordRound(nil, 0)
	if st := tr.Stats(); !st.BackoffUntil.IsZero() {
		t.Errorf("success left BackoffUntil %v", st.BackoffUntil)
	}
}
