package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

// ErrClosed is returned by methods of a closed [Tracker].
var ErrClosed = errors.New("client: tracker closed")

// Tracker queues events durably and sends them to the collector. It is the
// seed's ClientTracker. All methods are safe for concurrent use.
//
// Locks, always taken in this order and never recursively:
//
//   - life (RWMutex): read-held by every method that touches storage, write-
//     held by Close, so storage is closed only when nobody uses it;
//   - sendMu: one send round at a time (background or Flush);
//   - trackMu: nr assignment and the event's synced commit, so nrs of the
//     current session are unique and gap-free in commit order;
//   - stateMu: the counters and times below; held only briefly, never
//     across I/O.
type Tracker struct {
	cfg      Config // with defaults applied
	endpoint string
	session  string
	attrs    *hamustropb.Collection // this tracker's session, no payloads
	db       *pebble.DB

	life   sync.RWMutex
	closed bool

	sendMu sync.Mutex

	trackMu sync.Mutex
	nr      uint32 // last nr given out in t.session
	ip      string

	stateMu        sync.Mutex
	pending        int // stored events; counted before their commit, so never below the truth
	lastSync       time.Time
	failures       int // consecutive failed send rounds
	backoffUntil   time.Time
	sent           uint64
	requests       uint64
	failedRequests uint64

	// The background sender: TrackEvent pokes kick (buffer 1, never blocks);
	// quiesce lets tests wait until a poke has been handled.
	kick    chan struct{}
	quiesce chan chan struct{}
	ctx     context.Context // cancelled by Close: aborts in-flight requests
	cancel  context.CancelFunc
	done    chan struct{}
}

// New validates cfg, opens (or creates) the store in cfg.Dir, records this
// tracker's session and its attributes, and loads the state of earlier runs:
// unsent events, the last nr of every session, the last sync time.
//
// It does not send anything; the first send happens when a TrackEvent
// triggers one or on Flush.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	endpoint, err := trackEndpoint(cfg.CollectorURL)
	if err != nil {
		return nil, fmt.Errorf("client: config: CollectorURL: %w", err)
	}

	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	db, err := pebble.Open(cfg.Dir, &pebble.Options{
		FS:           cfg.fs,
		Cache:        cache,
		MemTableSize: 2 << 20,
		Logger:       pebbleLogger{cfg.Logger},
	})
	if err != nil {
		return nil, fmt.Errorf("client: open store in %s: %w", cfg.Dir, err)
	}

	t := &Tracker{
		cfg:      cfg,
		endpoint: endpoint,
		session:  SessionID(cfg.DeviceID, cfg.ClientID, cfg.SystemVersion, cfg.ProductVersion),
		db:       db,
		ip:       cfg.IP,
		kick:     make(chan struct{}, 1),
		quiesce:  make(chan chan struct{}),
		done:     make(chan struct{}),
	}
	t.attrs = &hamustropb.Collection{
		DeviceId:       proto.String(HashDeviceID(cfg.DeviceID)),
		ClientId:       proto.String(cfg.ClientID),
		Session:        proto.String(t.session),
		SystemVersion:  proto.String(cfg.SystemVersion),
		ProductVersion: proto.String(cfg.ProductVersion),
	}
	if cfg.System != "" {
		t.attrs.System = proto.String(cfg.System)
	}
	if cfg.ProductGitHash != "" {
		t.attrs.ProductGitHash = proto.String(cfg.ProductGitHash)
	}
	if err := t.open(); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: open store in %s: %w", cfg.Dir, err)
	}

	t.ctx, t.cancel = context.WithCancel(context.Background())
	go t.run()
	return t, nil
}

// open checks the store's format, writes this session's attributes (and the
// first-open time as last sync on a new store) and loads the state.
func (t *Tracker) open() error {
	b := t.db.NewBatch()
	defer b.Close()
	format, ok, err := get(t.db, []byte(keyFormat))
	switch {
	case err != nil:
		return err
	case !ok:
		b.Set([]byte(keyFormat), []byte(storeFormat), nil)
	case string(format) != storeFormat:
		return fmt.Errorf("unknown store format %q, want %q", format, storeFormat)
	}
	attrs, err := proto.Marshal(t.attrs)
	if err != nil {
		return err
	}
	b.Set(attrsKey(t.session), attrs, nil)
	if _, ok, err := get(t.db, []byte(keyLastSync)); err != nil {
		return err
	} else if !ok {
		// Never synced: the retention clock starts at the directory's first
		// open and keeps running across restarts.
		b.Set([]byte(keyLastSync), encodeInt64(t.cfg.Clock().UnixNano()), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}

	numbers, err := t.loadNumberPerSession()
	if err != nil {
		return err
	}
	t.nr = numbers[t.session]
	if t.lastSync, err = t.loadLastSyncTime(); err != nil {
		return err
	}
	if t.pending, err = countEvents(t.db); err != nil {
		return err
	}
	return nil
}

// Session returns this tracker's session id (see [SessionID]).
func (t *Tracker) Session() string { return t.session }

// Endpoint returns the URL events are posted to.
func (t *Tracker) Endpoint() string { return t.endpoint }

// SetIP changes the ip field of events tracked from now on; "" omits it.
func (t *Tracker) SetIP(ip string) {
	t.trackMu.Lock()
	t.ip = ip
	t.trackMu.Unlock()
}

// TrackEvent records one event of this tracker's session and returns once it
// is durable (a synced Pebble commit): an event TrackEvent returned nil for
// survives a crash of the app. It sets at (Clock, epoch seconds UTC), nr
// (the next serial number of the session; the first event of a session is 1,
// and numbering continues across restarts) and ip (Config.IP / SetIP).
// userID 0 and params "" are omitted from the payload.
//
// Afterwards it triggers a background send, without waiting for it, when
// the unsent events reach QueueSize or the last successful send is older
// than QueueRetention — unless a failed send put the tracker in backoff.
//
// ctx is checked before the write; the write itself is not interruptible.
func (t *Tracker) TrackEvent(ctx context.Context, event string, userID uint32, params string, isTesting bool) error {
	if event == "" {
		return errors.New("client: track: empty event name")
	}
	if !utf8.ValidString(event) {
		return errors.New("client: track: event name is not valid UTF-8")
	}
	if !utf8.ValidString(params) {
		return fmt.Errorf("client: track %s: params are not valid UTF-8", event)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("client: track %s: %w", event, err)
	}
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed {
		return ErrClosed
	}

	now, err := t.track(event, userID, params, isTesting)
	if err != nil {
		return err
	}
	if t.shouldSend(now) {
		select {
		case t.kick <- struct{}{}:
		default: // a send is already due
		}
	}
	return nil
}

// track assigns the nr and commits the event. It returns the event's time.
func (t *Tracker) track(event string, userID uint32, params string, isTesting bool) (time.Time, error) {
	t.trackMu.Lock()
	defer t.trackMu.Unlock()
	if t.nr == math.MaxUint32 {
		return time.Time{}, fmt.Errorf("client: track %s: session %s has used every nr", event, t.session)
	}
	nr := t.nr + 1
	now := t.cfg.Clock()
	p := &hamustropb.Payload{
		At:        proto.Uint64(unixSeconds(now)),
		Event:     proto.String(event),
		Nr:        proto.Uint32(nr),
		IsTesting: proto.Bool(isTesting),
	}
	if userID != 0 {
		p.UserId = proto.Uint32(userID)
	}
	if t.ip != "" {
		p.Ip = proto.String(t.ip)
	}
	if params != "" {
		p.Parameters = proto.String(params)
	}
	value, err := proto.Marshal(p)
	if err != nil {
		return time.Time{}, fmt.Errorf("client: track %s: %w", event, err)
	}

	b := t.db.NewBatch()
	defer b.Close()
	b.Set(eventKey(t.session, nr), value, nil)
	b.Set(counterKey(t.session), encodeUint32(nr), nil)
	t.addPending(1)
	if err := b.Commit(pebble.Sync); err != nil {
		t.addPending(-1)
		return time.Time{}, fmt.Errorf("client: track %s: store: %w", event, err)
	}
	t.nr = nr
	return now, nil
}

func unixSeconds(t time.Time) uint64 { return uint64(max(t.Unix(), 0)) }

func (t *Tracker) addPending(n int) {
	t.stateMu.Lock()
	t.pending += n
	t.stateMu.Unlock()
}

// shouldSend is the trigger: not in backoff, and either QueueSize events are
// unsent or the last sync happened before now - QueueRetention.
func (t *Tracker) shouldSend(now time.Time) bool {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	if now.Before(t.backoffUntil) {
		return false
	}
	return t.pending >= t.cfg.QueueSize || t.lastSync.Before(now.Add(-t.cfg.QueueRetention))
}

// run is the background sender. It handles one trigger at a time, so
// TrackEvent never waits for the network and at most one background send
// is in flight.
func (t *Tracker) run() {
	defer close(t.done)
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.kick:
			t.backgroundSend()
		case reply := <-t.quiesce:
			select {
			case <-t.kick:
				t.backgroundSend()
			default:
			}
			close(reply)
		}
	}
}

func (t *Tracker) backgroundSend() {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed || !t.shouldSend(t.cfg.Clock()) {
		return
	}
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	// A Flush may have run while we waited for sendMu.
	if !t.shouldSend(t.cfg.Clock()) {
		return
	}
	if err := t.sendAll(t.ctx); err != nil && t.ctx.Err() == nil {
		t.stateMu.Lock()
		until := t.backoffUntil
		t.stateMu.Unlock()
		t.cfg.Logger.Warn("client: send failed, events kept", "err", err, "retry_after", until)
	}
}

// Stats is a snapshot of a tracker's counters.
type Stats struct {
	Pending        int       // events stored and not yet acknowledged by a 200
	Sent           uint64    // events acknowledged by a 200 since New
	Requests       uint64    // POSTs made since New
	FailedRequests uint64    // POSTs that did not end in a 200
	LastSync       time.Time // last 200, or the store's first open if none yet
	BackoffUntil   time.Time // triggers do not send before this; zero if not backing off
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	return Stats{
		Pending:        t.pending,
		Sent:           t.sent,
		Requests:       t.requests,
		FailedRequests: t.failedRequests,
		LastSync:       t.lastSync,
		BackoffUntil:   t.backoffUntil,
	}
}

// LoadCollections reads every unsent event from storage, one Collection per
// session in session order, each with the attributes of the tracker that
// recorded it and its payloads in nr order. Sessions without unsent events
// are left out. It reads everything into memory; it is meant for inspection.
func (t *Tracker) LoadCollections() ([]*hamustropb.Collection, error) {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed {
		return nil, ErrClosed
	}
	ss, err := sessions(t.db)
	if err != nil {
		return nil, fmt.Errorf("client: load collections: %w", err)
	}
	var out []*hamustropb.Collection
	for _, s := range ss {
		payloads, _, err := readEvents(t.db, s, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("client: load collections: %w", err)
		}
		if len(payloads) == 0 {
			continue
		}
		c, err := loadAttrs(t.db, s)
		if err != nil {
			return nil, fmt.Errorf("client: load collections: %w", err)
		}
		c.Payloads = payloads
		out = append(out, c)
	}
	return out, nil
}

// LoadNumberPerSession reads the last nr given out in every session the
// store has seen. The next event of a session gets that number plus one.
func (t *Tracker) LoadNumberPerSession() (map[string]uint32, error) {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed {
		return nil, ErrClosed
	}
	return t.loadNumberPerSession()
}

func (t *Tracker) loadNumberPerSession() (map[string]uint32, error) {
	m, err := loadNumbers(t.db)
	if err != nil {
		return nil, fmt.Errorf("client: load numbers: %w", err)
	}
	return m, nil
}

// LoadLastSyncTime reads the time of the last send answered with 200. A
// store that has never had one reports the time it was first opened.
func (t *Tracker) LoadLastSyncTime() (time.Time, error) {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed {
		return time.Time{}, ErrClosed
	}
	return t.loadLastSyncTime()
}

func (t *Tracker) loadLastSyncTime() (time.Time, error) {
	v, ok, err := get(t.db, []byte(keyLastSync))
	if err != nil {
		return time.Time{}, fmt.Errorf("client: load last sync time: %w", err)
	}
	if !ok {
		return time.Time{}, errors.New("client: load last sync time: not set")
	}
	ns, err := decodeInt64(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("client: load last sync time: %w", err)
	}
	return time.Unix(0, ns), nil
}

// Close stops the background sender (aborting a request in flight, whose
// events stay stored), waits for running calls to return and closes the
// store. It does not send: call Flush first to deliver queued events.
// Events that are not sent stay in Dir for the next Tracker. Closing a
// closed Tracker returns ErrClosed.
func (t *Tracker) Close() error {
	t.cancel()
	t.life.Lock()
	if t.closed {
		t.life.Unlock()
		return ErrClosed
	}
	t.closed = true
	t.life.Unlock()
	<-t.done
	if err := t.db.Close(); err != nil {
		return fmt.Errorf("client: close store: %w", err)
	}
	return nil
}
