// Package hamustrotest holds the hamustro rule's test vectors, shared by the
// native tests, the wasm host tests and rule validation, so every place checks
// the same cases.
package hamustrotest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

// Secret is the secret Config() configures (with OldSecret, during rotation).
const (
	Secret    = "ultrasafesecret"
	OldSecret = "previoussecret"
)

// Config returns a configuration accepting Secret and OldSecret.
func Config() *abi.Config {
	return &abi.Config{Rule: "hamustro", Settings: []abi.Setting{{Key: "secrets", Values: []string{Secret, OldSecret}}}}
}

// Sign returns the X-Hamustro-Signature of body at time ts with secret.
func Sign(ts string, body []byte, secret string) string {
	md := md5.Sum(body)
	sum := sha256.Sum256([]byte(ts + "|" + hex.EncodeToString(md[:]) + "|" + secret))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// SessionOf returns md5hex(device_id:client_id:system_version:product_version).
func SessionOf(c *hamustropb.Collection) string {
	sum := md5.Sum([]byte(c.GetDeviceId() + ":" + c.GetClientId() + ":" + c.GetSystemVersion() + ":" + c.GetProductVersion()))
	return hex.EncodeToString(sum[:])
}

// EventID is the id the rule must give payload p of a collection whose
// session is session: "h:" + session + ":" + nr + ":" + the hex of the first
// 8 bytes of SHA-256 over the payload's canonical content,
//
//	"hamustro/v1\n" at "\n" nr "\n" user_id (or "-" when absent) "\n"
//	is_testing ("1" or "0") "\n" then event, ip and parameters, each as
//	its length in bytes, ":" and the bytes
//
// with numbers in decimal. An absent string counts as empty, as it does in
// the event.
func EventID(session string, p *hamustropb.Payload) string {
	user := "-"
	if p.UserId != nil {
		user = strconv.FormatUint(uint64(p.GetUserId()), 10)
	}
	testing := "0"
	if p.GetIsTesting() {
		testing = "1"
	}
	canon := fmt.Sprintf("hamustro/v1\n%d\n%d\n%s\n%s\n", p.GetAt(), p.GetNr(), user, testing)
	for _, s := range []string{p.GetEvent(), p.GetIp(), p.GetParameters()} {
		canon += strconv.Itoa(len(s)) + ":" + s
	}
	sum := sha256.Sum256([]byte(canon))
	return fmt.Sprintf("h:%s:%d:%s", session, p.GetNr(), hex.EncodeToString(sum[:8]))
}

// EventIDs returns the ids the rule must give the payloads of c, in order.
func EventIDs(c *hamustropb.Collection) []string {
	ids := make([]string, len(c.Payloads))
	for i, p := range c.Payloads {
		ids[i] = EventID(c.GetSession(), p)
	}
	return ids
}

// Collection returns a valid collection with n payloads.
func Collection(n int) *hamustropb.Collection {
	dev := sha256.Sum256([]byte("device-1"))
	c := &hamustropb.Collection{
		DeviceId:       proto.String(hex.EncodeToString(dev[:])),
		ClientId:       proto.String("app.example"),
		SystemVersion:  proto.String("14.1"),
		ProductVersion: proto.String("2.3.0"),
		System:         proto.String("android"),
	}
	c.Session = proto.String(SessionOf(c))
	for i := 1; i <= n; i++ {
		c.Payloads = append(c.Payloads, &hamustropb.Payload{
			At:         proto.Uint64(1700000000 + uint64(i)),
			Event:      proto.String("screen_view"),
			Nr:         proto.Uint32(uint32(i)),
			UserId:     proto.Uint32(42),
			Parameters: proto.String(`{"screen":"home"}`),
		})
	}
	return c
}

// SignedRequest returns a POST of body signed with Secret at time at.
func SignedRequest(body []byte, at time.Time) *abi.Request {
	ts := strconv.FormatInt(at.Unix(), 10)
	return &abi.Request{
		Method: "POST", Path: "/api/v1/track", Body: body, RemoteIP: "203.0.113.7", ReceivedAt: at.UnixNano(),
		Headers: []abi.Header{{Name: "x-hamustro-time", Value: ts}, {Name: "x-hamustro-signature", Value: Sign(ts, body, Secret)}},
	}
}

// Vector is one request and what the rule must answer.
type Vector struct {
	Name    string
	Config  *abi.Config
	Request *abi.Request
	Status  uint32
	Message string   // substring the message must contain
	Events  []string // event ids, in order
	IPs     []string // event ip fields, when checked
}

func mustMarshal(c *hamustropb.Collection) []byte {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// NestedGroups returns an unknown field num holding depth groups nested in
// one another (start-group tags, then as many end-group tags when closed).
// Nothing in the Hamustro protocol is a group; a decoder must skip the field,
// or refuse it, without recursing once per level.
func NestedGroups(num protowire.Number, depth int, closed bool) []byte {
	var b []byte
	for range depth {
		b = protowire.AppendTag(b, num, protowire.StartGroupType)
	}
	if closed {
		b = protowire.AppendTag(b, num+1, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		for range depth {
			b = protowire.AppendTag(b, num, protowire.EndGroupType)
		}
	}
	return b
}

// withPayloadField returns the encoding of c with extra appended to the
// encoding of its payload i, as an unknown field would be.
func withPayloadField(c *hamustropb.Collection, i int, extra []byte) []byte {
	payloads := c.Payloads
	c.Payloads = nil
	b := mustMarshal(c)
	c.Payloads = payloads
	for j, p := range payloads {
		pb, err := proto.MarshalOptions{AllowPartial: true}.Marshal(p)
		if err != nil {
			panic(err)
		}
		if j == i {
			pb = append(pb, extra...)
		}
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, pb)
	}
	return b
}

// Vectors returns the hamustro rule's test vectors.
func Vectors() []Vector {
	at := time.Unix(1700000100, 0)
	good := Collection(3)
	goodBody := mustMarshal(good)
	ids := EventIDs(good)

	withHeaders := func(body []byte, h ...abi.Header) *abi.Request {
		r := SignedRequest(body, at)
		r.Headers = h
		return r
	}
	ts := strconv.FormatInt(at.Unix(), 10)

	wrongSession := Collection(1)
	wrongSession.Session = proto.String("0123456789abcdef0123456789abcdef")
	missing := Collection(1)
	missing.ClientId = nil
	missingNr := Collection(2)
	missingNr.Payloads[1].Nr = nil
	empty := Collection(0)
	withIP := Collection(2)
	withIP.Payloads[0].Ip = proto.String("198.51.100.23")

	// After a reinstall the app numbers its events from 1 again, in the
	// same session: new payloads reuse the nrs of ones already stored.
	reinstalled := Collection(3)
	for i, p := range reinstalled.Payloads {
		p.At = proto.Uint64(1700086400 + uint64(i))
		p.Parameters = proto.String(`{"screen":"onboarding"}`)
	}
	// A retried payload goes out again with payloads tracked since.
	rebatched := Collection(4)
	rebatched.Payloads = append(rebatched.Payloads[1:2], rebatched.Payloads[3], reinstalled.Payloads[0])

	// Strings the store could not keep: each must be refused, naming the
	// field, before anything is acknowledged.
	badString := func(change func(c *hamustropb.Collection)) []byte {
		c := Collection(3)
		change(c)
		if c.GetSession() == SessionOf(Collection(3)) {
			c.Session = proto.String(SessionOf(c))
		}
		return mustMarshal(c)
	}
	long := strings.Repeat("x", 257)
	longClient := Collection(2)
	longClient.ClientId = proto.String(strings.Repeat("é", 128))
	longClient.Session = proto.String(SessionOf(longClient))
	badStrings := []struct {
		name    string
		change  func(c *hamustropb.Collection)
		message string
	}{
		{"device_id not UTF-8", func(c *hamustropb.Collection) { c.DeviceId = proto.String("dev\xff") }, "device_id is not valid UTF-8"},
		{"client_id not UTF-8", func(c *hamustropb.Collection) { c.ClientId = proto.String("app.\xc3") }, "client_id is not valid UTF-8"},
		{"client_id too long", func(c *hamustropb.Collection) { c.ClientId = proto.String(long) }, "client_id is longer than 256 bytes"},
		{"client_id with NUL", func(c *hamustropb.Collection) { c.ClientId = proto.String("app\x00") }, "client_id contains a NUL byte"},
		{"session not UTF-8", func(c *hamustropb.Collection) { c.Session = proto.String("\xed\xa0\x80") }, "session is not valid UTF-8"},
		{"system_version not UTF-8", func(c *hamustropb.Collection) { c.SystemVersion = proto.String("14\x80") }, "system_version is not valid UTF-8"},
		{"product_version not UTF-8", func(c *hamustropb.Collection) { c.ProductVersion = proto.String("\xfe2.3") }, "product_version is not valid UTF-8"},
		{"system not UTF-8", func(c *hamustropb.Collection) { c.System = proto.String("andr\xc0\xafid") }, "system is not valid UTF-8"},
		{"product_git_hash not UTF-8", func(c *hamustropb.Collection) { c.ProductGitHash = proto.String("\xff") }, "product_git_hash is not valid UTF-8"},
		{"event not UTF-8", func(c *hamustropb.Collection) { c.Payloads[1].Event = proto.String("screen_\xe9") }, "payloads[1].event is not valid UTF-8"},
		{"event too long", func(c *hamustropb.Collection) { c.Payloads[2].Event = proto.String(long) }, "payloads[2].event is longer than 256 bytes"},
		{"event with NUL", func(c *hamustropb.Collection) { c.Payloads[0].Event = proto.String("screen\x00view") }, "payloads[0].event contains a NUL byte"},
		{"ip not UTF-8", func(c *hamustropb.Collection) { c.Payloads[2].Ip = proto.String("198.51.100.\xff") }, "payloads[2].ip is not valid UTF-8"},
		{"parameters not UTF-8", func(c *hamustropb.Collection) { c.Payloads[1].Parameters = proto.String("{\"screen\":\"\xc3\"}") }, "payloads[1].parameters is not valid UTF-8"},
	}

	skewCfg := Config()
	skewCfg.Settings = append(skewCfg.Settings, abi.Setting{Key: "max_clock_skew", Values: []string{"5m"}})
	maskCfg := Config()
	maskCfg.Settings = append(maskCfg.Settings, abi.Setting{Key: "mask_ip", Values: []string{"true"}})
	skewed := SignedRequest(goodBody, at.Add(-time.Hour))
	skewed.ReceivedAt = at.UnixNano()

	withGroups := func(depth int, closed bool) []byte {
		return append(bytes.Clone(goodBody), NestedGroups(9, depth, closed)...)
	}

	vs := []Vector{
		{Name: "accepted", Config: Config(), Request: SignedRequest(goodBody, at), Status: 200, Events: ids,
			IPs: []string{"203.0.113.7", "203.0.113.7", "203.0.113.7"}},
		{Name: "old secret during rotation", Config: Config(), Request: withHeaders(goodBody,
			abi.Header{Name: "x-hamustro-time", Value: ts}, abi.Header{Name: "x-hamustro-signature", Value: Sign(ts, goodBody, OldSecret)}),
			Status: 200, Events: ids},
		{Name: "payload ip kept, connection ip filled", Config: Config(), Request: SignedRequest(mustMarshal(withIP), at), Status: 200,
			Events: EventIDs(withIP), IPs: []string{"198.51.100.23", "203.0.113.7"}},
		{Name: "ip masked", Config: maskCfg, Request: SignedRequest(mustMarshal(withIP), at), Status: 200,
			Events: EventIDs(withIP), IPs: []string{"198.51.100.0", "203.0.113.0"}},
		{Name: "nr reused after a reinstall", Config: Config(), Request: SignedRequest(mustMarshal(reinstalled), at), Status: 200,
			Events: EventIDs(reinstalled)},
		{Name: "retried payload in a new batch", Config: Config(), Request: SignedRequest(mustMarshal(rebatched), at), Status: 200,
			Events: []string{ids[1], EventIDs(rebatched)[1], EventIDs(reinstalled)[0]}},
		{Name: "empty collection", Config: Config(), Request: SignedRequest(mustMarshal(empty), at), Status: 204},
		{Name: "no time header", Config: Config(), Request: withHeaders(goodBody, abi.Header{Name: "x-hamustro-signature", Value: Sign(ts, goodBody, Secret)}),
			Status: 401, Message: "missing X-Hamustro-Time"},
		{Name: "no signature header", Config: Config(), Request: withHeaders(goodBody, abi.Header{Name: "x-hamustro-time", Value: ts}),
			Status: 401, Message: "missing X-Hamustro-Signature"},
		{Name: "bad time header", Config: Config(), Request: withHeaders(goodBody, abi.Header{Name: "x-hamustro-time", Value: "yesterday"},
			abi.Header{Name: "x-hamustro-signature", Value: Sign("yesterday", goodBody, Secret)}), Status: 401, Message: "not an epoch timestamp"},
		{Name: "wrong secret", Config: Config(), Request: withHeaders(goodBody, abi.Header{Name: "x-hamustro-time", Value: ts},
			abi.Header{Name: "x-hamustro-signature", Value: Sign(ts, goodBody, "guess")}), Status: 401, Message: "invalid X-Hamustro-Signature"},
		{Name: "body changed after signing", Config: Config(), Request: withHeaders(append(bytes.Clone(goodBody), 0x38, 0x01),
			abi.Header{Name: "x-hamustro-time", Value: ts}, abi.Header{Name: "x-hamustro-signature", Value: Sign(ts, goodBody, Secret)}),
			Status: 401, Message: "invalid X-Hamustro-Signature"},
		{Name: "skew within window", Config: skewCfg, Request: SignedRequest(goodBody, at), Status: 200, Events: ids},
		{Name: "skew outside window", Config: skewCfg, Request: skewed, Status: 401, Message: "away from the edge clock"},
		{Name: "skew ignored when off", Config: Config(), Request: skewed, Status: 200, Events: ids},
		{Name: "not protobuf", Config: Config(), Request: SignedRequest([]byte("something"), at), Status: 400, Message: "not a valid protobuf"},
		{Name: "missing collection field", Config: Config(), Request: SignedRequest(mustMarshal(missing), at), Status: 400, Message: "client_id"},
		{Name: "missing payload field", Config: Config(), Request: SignedRequest(mustMarshal(missingNr), at), Status: 400, Message: "payloads[1]: missing required field(s) nr"},
		{Name: "wrong session", Config: Config(), Request: SignedRequest(mustMarshal(wrongSession), at), Status: 400, Message: "does not match"},
		{Name: "unknown group skipped", Config: Config(), Request: SignedRequest(withGroups(3, true), at), Status: 200, Events: ids},
		{Name: "unknown group in a payload skipped", Config: Config(), Request: SignedRequest(withPayloadField(Collection(3), 1, NestedGroups(9, 3, true)), at),
			Status: 200, Events: ids},
		{Name: "64 nested groups skipped", Config: Config(), Request: SignedRequest(withGroups(64, true), at), Status: 200, Events: ids},
		{Name: "65 nested groups", Config: Config(), Request: SignedRequest(withGroups(65, true), at), Status: 400, Message: "collection: an unknown field nests groups more than 64 deep"},
		{Name: "1,000 nested groups", Config: Config(), Request: SignedRequest(withGroups(1000, true), at), Status: 400, Message: "collection: an unknown field nests groups more than 64 deep"},
		{Name: "100,000 nested groups", Config: Config(), Request: SignedRequest(withGroups(100_000, true), at), Status: 400, Message: "collection: an unknown field nests groups more than 64 deep"},
		{Name: "100,000 unclosed groups", Config: Config(), Request: SignedRequest(withGroups(100_000, false), at), Status: 400, Message: "collection: an unknown field nests groups more than 64 deep"},
		{Name: "1,000 nested groups in a payload", Config: Config(), Request: SignedRequest(withPayloadField(Collection(3), 2, NestedGroups(9, 1000, true)), at),
			Status: 400, Message: "payloads[2]: an unknown field nests groups more than 64 deep"},
		{Name: "100,000 nested groups in a payload", Config: Config(), Request: SignedRequest(withPayloadField(Collection(3), 0, NestedGroups(9, 100_000, true)), at),
			Status: 400, Message: "payloads[0]: an unknown field nests groups more than 64 deep"},
		{Name: "mismatched end group", Config: Config(), Request: SignedRequest(protowire.AppendTag(withGroups(1, false), 10, protowire.EndGroupType), at),
			Status: 400, Message: "not a valid protobuf"},
		{Name: "client_id of 256 bytes", Config: Config(), Request: SignedRequest(mustMarshal(longClient), at), Status: 200, Events: EventIDs(longClient)},
	}
	for _, b := range badStrings {
		vs = append(vs, Vector{Name: b.name, Config: Config(), Request: SignedRequest(badString(b.change), at), Status: 400, Message: b.message})
	}
	return vs
}

// Diff describes how got differs from what v expects, or returns "".
func Diff(v Vector, got abi.Verdict) string {
	var b strings.Builder
	if got.Status != v.Status {
		fmt.Fprintf(&b, "status %d, want %d (message %q); ", got.Status, v.Status, got.Message)
	}
	if !strings.Contains(got.Message, v.Message) {
		fmt.Fprintf(&b, "message %q does not contain %q; ", got.Message, v.Message)
	}
	if len(got.Events) != len(v.Events) {
		fmt.Fprintf(&b, "%d events, want %d; ", len(got.Events), len(v.Events))
	} else {
		for i, e := range got.Events {
			if e.ID != v.Events[i] {
				fmt.Fprintf(&b, "event %d id %q, want %q; ", i, e.ID, v.Events[i])
			}
			if v.IPs != nil && e.IP != v.IPs[i] {
				fmt.Fprintf(&b, "event %d ip %q, want %q; ", i, e.IP, v.IPs[i])
			}
			if e.Source != abi.SourceHamustro || e.Name != "screen_view" || e.Session == "" || e.ClientTime == 0 || !bytes.HasPrefix(e.Data, []byte("{")) {
				fmt.Fprintf(&b, "event %d incomplete: %+v; ", i, e)
			}
		}
	}
	return b.String()
}
