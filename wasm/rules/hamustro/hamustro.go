// Package hamustro is the built-in rule for POST /api/v1/track: it verifies a
// Hamustro collection's signature, decodes it, checks it and emits one event
// per payload.
//
// Settings (abi.Config):
//
//	secrets         shared secrets; any of them may sign (rotation)
//	max_clock_skew  a Go duration; X-Hamustro-Time further than this from the
//	                edge clock is refused (401). Empty or 0: no check, as the
//	                protocol never had one.
//	mask_ip         "true" zeroes the last octet of IPv4 addresses
//	max_payloads    most payloads in one collection (default 5000); more is
//	                a 413 asking the client to send smaller collections
//
// Event mapping: id "h:<session>:<nr>:<hash>", where hash is the hex of the
// first 8 bytes of SHA-256 over the payload's canonical content (see
// appendCanonical); category = client_id, name = the payload's event, client
// time = at (seconds; values of 1e11 and more are read as milliseconds), ip =
// the payload's ip or else the connection's, data = the collection's and
// payload's fields as a JSON object.
//
// Strings: every string field of the collection and its payloads must be
// valid UTF-8, and client_id and event, which become the event's category
// and name, must keep internal/storable's limits (at most 256 bytes, no
// NUL). Otherwise the answer is 400 naming the field, e.g.
// "payloads[3].event is not valid UTF-8": the aggregator could never store
// the events, and a 2xx would have told the client they were safe.
//
// Identity: a payload sent again, alone or batched with newer ones, gets the
// same id, so the aggregator stores it once; a payload that differs in any
// field gets another, also when it reuses an nr, as an app does after a
// reinstall (the session depends only on the device, the client and the
// versions, and numbering restarts at 1). The id is made from the payload
// alone, never from the rest of the body: clients re-batch retried payloads
// with new ones. See docs/RATIONALE.md.
package hamustro

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

// Header names, lower case as the ABI delivers them.
const (
	HeaderTime      = "x-hamustro-time"
	HeaderSignature = "x-hamustro-signature"
)

// Rule is the hamustro rule; build it with New. It serves one call at a
// time: the fields after the settings are scratch space reused by every call,
// so that a call allocates nothing per payload.
type Rule struct {
	host    abi.Host
	secrets [][]byte
	maxSkew int64 // nanoseconds; 0 = off
	maskIP  bool
	maxPay  int

	c      collection
	events []abi.Event
	arena  []byte // event ids and data of the current call
	msg    []byte
}

// New builds the rule from its settings.
func New(cfg *abi.Config, host abi.Host) (abi.Rule, error) {
	r := &Rule{host: host, maxPay: DefaultMaxPayloads}
	for _, s := range cfg.Values("secrets") {
		if s == "" {
			return nil, errors.New("hamustro: empty secret")
		}
		r.secrets = append(r.secrets, []byte(s))
	}
	if len(r.secrets) == 0 {
		return nil, errors.New("hamustro: no secrets configured")
	}
	if s := cfg.Value("max_clock_skew"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, errors.New("hamustro: max_clock_skew " + strconv.Quote(s) + " is not a non-negative duration")
		}
		r.maxSkew = int64(d)
	}
	switch v := cfg.Value("mask_ip"); v {
	case "", "false":
	case "true":
		r.maskIP = true
	default:
		return nil, errors.New("hamustro: mask_ip " + strconv.Quote(v) + " is not true or false")
	}
	if s := cfg.Value("max_payloads"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, errors.New("hamustro: max_payloads " + strconv.Quote(s) + " is not a positive number")
		}
		r.maxPay = n
	}
	return r, nil
}

// DefaultMaxPayloads is the default of the max_payloads setting.
const DefaultMaxPayloads = 5000

func reject(status uint32, msg string) abi.Verdict { return abi.Verdict{Status: status, Message: msg} }

// Handle decides on one request.
func (r *Rule) Handle(req *abi.Request) abi.Verdict {
	ts, ok := req.Header(HeaderTime)
	if !ok || ts == "" {
		return reject(401, "missing X-Hamustro-Time header")
	}
	sig, ok := req.Header(HeaderSignature)
	if !ok || sig == "" {
		return reject(401, "missing X-Hamustro-Signature header")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs < 0 {
		return reject(401, "X-Hamustro-Time is not an epoch timestamp in seconds")
	}
	if r.maxSkew > 0 {
		skew := req.ReceivedAt - secs*int64(time.Second)
		if skew < 0 {
			skew = -skew
		}
		if skew > r.maxSkew {
			return reject(401, "X-Hamustro-Time is "+time.Duration(skew).Round(time.Second).String()+
				" away from the edge clock (at most "+time.Duration(r.maxSkew).String()+" allowed)")
		}
	}
	if !r.verify(ts, req.Body, sig) {
		return reject(401, "invalid X-Hamustro-Signature")
	}

	c := &r.c
	if err := decodeCollection(req.Body, c); err != nil {
		return reject(400, err.Error())
	}
	if want := r.session(c); c.session != want {
		return reject(400, "session "+strconv.Quote(c.session)+" does not match md5hex(device_id:client_id:system_version:product_version)")
	}
	if len(c.payloads) == 0 {
		return abi.Verdict{Status: 204}
	}
	if len(c.payloads) > r.maxPay {
		return reject(413, "collection has "+strconv.Itoa(len(c.payloads))+" payloads; send at most "+strconv.Itoa(r.maxPay)+" per request")
	}
	// Size the scratch space once: growing large buffers by doubling is
	// slow under TinyGo's allocator.
	if cap(r.events) < len(c.payloads) {
		r.events = make([]abi.Event, 0, len(c.payloads))
	}
	if need := 3*len(req.Body) + 256*len(c.payloads); cap(r.arena) < need {
		r.arena = make([]byte, 0, need)
	}
	r.events = r.events[:0]
	r.arena = r.arena[:0]
	for i := range c.payloads {
		r.events = append(r.events, r.event(c, &c.payloads[i], req))
	}
	return abi.Verdict{Status: 200, Events: r.events}
}

// Signature returns base64(sha256(time + "|" + md5hex(body) + "|" + secret)).
func Signature(host abi.Host, unixTime string, body []byte, secret []byte) string {
	md := host.MD5(body)
	msg := make([]byte, 0, len(unixTime)+2+32+len(secret))
	msg = append(msg, unixTime...)
	msg = append(msg, '|')
	msg = guest.AppendHex(msg, md[:])
	msg = append(msg, '|')
	msg = append(msg, secret...)
	sum := host.SHA256(msg)
	return host.Base64(sum[:])
}

func (r *Rule) verify(ts string, body []byte, sig string) bool {
	got, ok := r.host.Base64Decode(sig)
	if !ok || len(got) != 32 {
		return false
	}
	md := r.host.MD5(body)
	r.msg = append(r.msg[:0], ts...)
	r.msg = append(r.msg, '|')
	r.msg = guest.AppendHex(r.msg, md[:])
	r.msg = append(r.msg, '|')
	prefix := len(r.msg)
	match := false
	// Every secret is tried, so the time taken does not tell which matched.
	for _, s := range r.secrets {
		r.msg = append(r.msg[:prefix], s...)
		sum := r.host.SHA256(r.msg)
		if r.host.ConstantTimeEqual(sum[:], got) {
			match = true
		}
	}
	return match
}

func (r *Rule) session(c *collection) string {
	r.msg = append(r.msg[:0], c.deviceID...)
	r.msg = append(r.msg, ':')
	r.msg = append(r.msg, c.clientID...)
	r.msg = append(r.msg, ':')
	r.msg = append(r.msg, c.systemVersion...)
	r.msg = append(r.msg, ':')
	r.msg = append(r.msg, c.productVersion...)
	sum := r.host.MD5(r.msg)
	return guest.Hex(sum[:])
}

func (r *Rule) event(c *collection, p *payload, req *abi.Request) abi.Event {
	ip := p.ip
	if ip == "" {
		ip = req.RemoteIP
	}
	if r.maskIP {
		ip = maskIPv4(ip)
	}
	clientTime := int64(p.at) * int64(time.Second)
	if p.at >= 1e11 { // milliseconds
		clientTime = int64(p.at) * int64(time.Millisecond)
	}
	r.msg = appendCanonical(r.msg[:0], p)
	sum := r.host.SHA256(r.msg)
	start := len(r.arena)
	r.arena = append(r.arena, IDPrefix...)
	r.arena = append(r.arena, c.session...)
	r.arena = append(r.arena, ':')
	r.arena = strconv.AppendUint(r.arena, uint64(p.nr), 10)
	r.arena = append(r.arena, ':')
	r.arena = guest.AppendHex(r.arena, sum[:idHashBytes])
	id := abi.Alias(r.arena[start:len(r.arena):len(r.arena)])

	d := guest.NewJSONObject(r.arena)
	d.String("device_id", c.deviceID)
	d.String("client_id", c.clientID)
	d.String("system_version", c.systemVersion)
	d.String("product_version", c.productVersion)
	if c.system != "" {
		d.String("system", c.system)
	}
	if c.productGitHash != "" {
		d.String("product_git_hash", c.productGitHash)
	}
	d.Uint("at", p.at)
	d.Uint("nr", uint64(p.nr))
	if p.hasUserID {
		d.Uint("user_id", uint64(p.userID))
	}
	if p.parameters != "" {
		d.String("parameters", p.parameters)
	}
	if p.isTesting {
		d.Bool("is_testing", true)
	}
	var data []byte
	r.arena, data = d.Finish()
	return abi.Event{
		ID:         id,
		Source:     abi.SourceHamustro,
		ClientTime: clientTime,
		Session:    c.session,
		Category:   c.clientID,
		Name:       p.event,
		Data:       data,
		IP:         ip,
	}
}

// IDPrefix starts every event id of this rule.
const IDPrefix = "h:"

// idHashBytes is how many bytes of the content hash an id carries.
const idHashBytes = 8

// canonicalVersion starts the canonical content; a change to its form must
// change it (and with it every id).
const canonicalVersion = "hamustro/v1\n"

// appendCanonical appends the canonical content of p, which its event id
// hashes: every field the payload carries, in a form that two different
// payloads cannot share,
//
//	"hamustro/v1\n" at "\n" nr "\n" user_id (or "-" when absent) "\n"
//	is_testing ("1" or "0") "\n" then event, ip and parameters, each as
//	its length in bytes, ":" and the bytes
//
// with numbers in decimal. Numbers end at a newline, which a decimal has
// none of, and a string's length says where the next one starts. An absent
// string counts as empty and an absent is_testing as false, as in the
// event; user_id keeps its absence, which the event's data shows. The ip is
// the payload's own, not the connection's, which changes between retries.
func appendCanonical(b []byte, p *payload) []byte {
	b = append(b, canonicalVersion...)
	b = strconv.AppendUint(b, p.at, 10)
	b = append(b, '\n')
	b = strconv.AppendUint(b, uint64(p.nr), 10)
	b = append(b, '\n')
	if p.hasUserID {
		b = strconv.AppendUint(b, uint64(p.userID), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, '\n')
	if p.isTesting {
		b = append(b, "1\n"...)
	} else {
		b = append(b, "0\n"...)
	}
	for _, s := range [...]string{p.event, p.ip, p.parameters} {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b
}

// maskIPv4 zeroes the last octet of a dotted-quad address and leaves anything
// else as it is.
func maskIPv4(ip string) string {
	i := strings.LastIndexByte(ip, '.')
	if i < 0 || strings.Count(ip, ".") != 3 || strings.IndexByte(ip, ':') >= 0 {
		return ip
	}
	return ip[:i+1] + "0"
}
