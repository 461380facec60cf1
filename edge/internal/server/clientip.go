package server

import (
	"bytes"
	"net"
	"net/netip"
	"unsafe"
)

// clientAddr returns the address of the client: the peer, unless the peer
// is a trusted proxy, in which case X-Forwarded-For is walked from the right
// past every trusted proxy and the first untrusted address is the client.
// An unparsable entry stops the walk at the last trusted hop, so a client
// cannot forge its address by prepending values. The header is never read
// when the peer is not trusted. It allocates nothing.
func clientAddr(peer net.IP, xff []byte, trusted []netip.Prefix) netip.Addr {
	addr, ok := netip.AddrFromSlice(peer)
	if !ok {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if len(trusted) == 0 || len(xff) == 0 || !isTrusted(addr, trusted) {
		return addr
	}
	for len(xff) > 0 {
		hop := xff
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			hop, xff = xff[i+1:], xff[:i]
		} else {
			xff = nil
		}
		h, ok := parseHop(bytes.TrimSpace(hop))
		if !ok {
			return addr
		}
		if !isTrusted(h, trusted) {
			return h
		}
		addr = h
	}
	return addr
}

// parseHop parses one X-Forwarded-For entry: an IP address without a zone
// (an entry with one is no client address).
func parseHop(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > maxHopLen {
		return netip.Addr{}, false
	}
	// The string shares b's bytes instead of copying them (which would
	// allocate: ParseAddr's argument escapes into its error). That is safe
	// because nothing keeps it: the error is dropped here, and a zone,
	// which ParseAddr keeps, is interned as a copy (package unique) and
	// refused anyway.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// maxHopLen is longer than any IP address's text (an IPv4-mapped IPv6
// address is 45 bytes).
const maxHopLen = 64

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrString is the client address as rules see it: "" when unknown.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
