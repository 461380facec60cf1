package hamustro

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

// collection and payload mirror proto/hamustropb, decoded without reflection
// (the generated code does not run under TinyGo).
type collection struct {
	deviceID, clientID, session, systemVersion, productVersion string
	system, productGitHash                                     string
	payloads                                                   []payload
}

type payload struct {
	at         uint64
	event      string
	nr         uint32
	userID     uint32
	hasUserID  bool
	ip         string
	parameters string
	isTesting  bool
}

var (
	errTruncated   = errors.New("body is not a valid protobuf Collection")
	errBadValue    = errors.New("not a valid protobuf value")
	errGroupsDepth = errors.New("an unknown field nests groups more than " + strconv.Itoa(maxGroupDepth) + " deep")
)

// maxGroupDepth is the deepest nesting of groups (wire types 3 and 4) that
// an unknown field may have. Nothing in the Hamustro protocol is a group, so
// honest clients send none; the bound is there because skipping groups
// takes a stack of the open ones. protowire.ConsumeFieldValue recurses once
// per level, and under TinyGo about 1,000 levels overflow the guest's stack:
// a trap, answered 500, which a Hamustro client retries forever.
const maxGroupDepth = 64

// skipField returns the length of the value that starts b, of a field whose
// tag gave num and typ: what protowire.ConsumeFieldValue returns, but
// without recursion. Groups are walked in one loop with a fixed stack of the
// open ones, so any nesting, however deep, costs one pass over b and at most
// maxGroupDepth entries; deeper nesting is errGroupsDepth. An end-group tag
// must close the innermost open group (same field number), as protobuf
// requires.
func skipField(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if typ != protowire.StartGroupType {
		n := protowire.ConsumeFieldValue(num, typ, b) // recurses only into groups
		if n < 0 {
			return 0, errBadValue
		}
		return n, nil
	}
	var open [maxGroupDepth]protowire.Number
	open[0] = num
	depth, i := 1, 0
	for depth > 0 {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return 0, errBadValue
		}
		i += n
		switch typ {
		case protowire.StartGroupType:
			if depth == maxGroupDepth {
				return 0, errGroupsDepth
			}
			open[depth] = num
			depth++
		case protowire.EndGroupType:
			depth--
			if open[depth] != num {
				return 0, errBadValue
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				return 0, errBadValue
			}
			i += n
		}
	}
	return i, nil
}

// decodeCollection decodes b into c, reusing c's payload slice. Strings alias
// b (see abi.Alias): c is valid while b is.
func decodeCollection(b []byte, c *collection) error {
	*c = collection{payloads: c.payloads[:0]}
	if n := countPayloads(b); cap(c.payloads) < n {
		c.payloads = make([]payload, 0, n)
	}
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if num >= 1 && num <= 8 && typ != protowire.BytesType {
			return errors.New("collection field " + strconv.Itoa(int(num)) + " has the wrong wire type")
		}
		if num < 1 || num > 8 {
			n, err := skipField(num, typ, b)
			switch {
			case err == errGroupsDepth:
				return errors.New("collection: " + err.Error())
			case err != nil:
				return errTruncated
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if num <= 5 {
			seen |= 1 << (num - 1)
		}
		switch num {
		case 1:
			c.deviceID = abi.Alias(v)
		case 2:
			c.clientID = abi.Alias(v)
		case 3:
			c.session = abi.Alias(v)
		case 4:
			c.systemVersion = abi.Alias(v)
		case 5:
			c.productVersion = abi.Alias(v)
		case 6:
			c.system = abi.Alias(v)
		case 7:
			c.productGitHash = abi.Alias(v)
		case 8:
			p, err := decodePayload(v, len(c.payloads))
			if err != nil {
				return err
			}
			c.payloads = append(c.payloads, p)
		}
	}
	var missing []string
	for i, name := range [...]string{"device_id", "client_id", "session", "system_version", "product_version"} {
		if seen&(1<<i) == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return errors.New("collection: missing required field(s) " + strings.Join(missing, ", "))
	}
	strs := [...]struct {
		name, v string
		value   bool // becomes an event's category: storable's limits apply
	}{
		{"device_id", c.deviceID, false},
		{"client_id", c.clientID, true},
		{"session", c.session, false},
		{"system_version", c.systemVersion, false},
		{"product_version", c.productVersion, false},
		{"system", c.system, false},
		{"product_git_hash", c.productGitHash, false},
	}
	for _, f := range strs {
		if msg := checkString(f.v, f.value); msg != "" {
			return errors.New(f.name + msg)
		}
	}
	return nil
}

// checkString returns what is wrong with a string field's value s, or "".
// Every string must be valid UTF-8: the rule copies each into an event,
// as a field or into the JSON data, and proto3 requires UTF-8 of an
// event's strings — the edge could spool such an event but nothing could
// decode it again. A value that becomes an event's category or name must
// also keep storable's limits (length, no NUL). A body that breaks either
// is refused with 400 before anything is acknowledged: the store would
// reject its events for good.
func checkString(s string, value bool) string {
	if value {
		if len(s) > storable.MaxValueLen {
			return " is longer than " + strconv.Itoa(storable.MaxValueLen) + " bytes"
		}
		if strings.IndexByte(s, 0) >= 0 {
			return " contains a NUL byte"
		}
	}
	if !utf8.ValidString(s) {
		return " is not valid UTF-8"
	}
	return ""
}

func decodePayload(b []byte, index int) (payload, error) {
	var p payload
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return p, payloadError(index, ": not a valid protobuf Payload")
		}
		b = b[n:]
		var (
			x   uint64
			v   []byte
			err error
		)
		want := protowire.VarintType
		if num == 2 || num == 5 || num == 6 {
			want = protowire.BytesType
		}
		if num >= 1 && num <= 7 && typ != want {
			return p, payloadError(index, ": field "+strconv.Itoa(int(num))+" has the wrong wire type")
		}
		switch {
		case num < 1 || num > 7:
			n, err = skipField(num, typ, b)
			if err == errGroupsDepth {
				return p, payloadError(index, ": "+err.Error())
			}
			if err != nil {
				n = -1
			}
		case want == protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			v, n = protowire.ConsumeBytes(b)
		}
		if n < 0 {
			return p, payloadError(index, ": not a valid protobuf Payload")
		}
		b = b[n:]
		switch num {
		case 1:
			p.at, seen = x, seen|1
		case 2:
			p.event, seen = abi.Alias(v), seen|2
		case 3:
			if x > 1<<32-1 {
				return p, payloadError(index, ": nr overflows uint32")
			}
			p.nr, seen = uint32(x), seen|4
		case 4:
			p.userID, p.hasUserID = uint32(x), true
		case 5:
			p.ip = abi.Alias(v)
		case 6:
			p.parameters = abi.Alias(v)
		case 7:
			p.isTesting = x != 0
		}
	}
	var missing []string
	for i, name := range [...]string{"at", "event", "nr"} {
		if seen&(1<<i) == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return p, payloadError(index, ": missing required field(s) "+strings.Join(missing, ", "))
	}
	strs := [...]struct {
		name, v string
		value   bool // becomes the event's name
	}{
		{".event", p.event, true},
		{".ip", p.ip, false},
		{".parameters", p.parameters, false},
	}
	for _, f := range strs {
		if msg := checkString(f.v, f.value); msg != "" {
			return p, payloadError(index, f.name+msg)
		}
	}
	return p, nil
}

func payloadError(index int, msg string) error {
	return errors.New("payloads[" + strconv.Itoa(index) + "]" + msg)
}

// countPayloads counts the payloads fields of an encoded collection without
// decoding them, to size the slice once. It stops quietly at bad input; the
// decoder reports it.
func countPayloads(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		l, err := skipField(num, typ, b)
		if err != nil {
			return n
		}
		b = b[l:]
		if num == 8 {
			n++
		}
	}
	return n
}
