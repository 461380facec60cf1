package server

import (
	"net"
	"net/netip"
	"strings"
)

// clientIP returns the address of the client: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right past
// every trusted proxy and the first untrusted address is the client. An
// unparsable entry stops the walk at the last trusted hop, so a client cannot
// forge its address by prepending values.
func clientIP(peer net.IP, xff []byte, trusted []netip.Prefix) string {
	addr, ok := netip.AddrFromSlice(peer)
	if !ok {
		return ""
	}
	addr = addr.Unmap()
	if len(trusted) == 0 || len(xff) == 0 || !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := strings.Split(string(xff), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr.String()
		}
		h = h.Unmap()
		if !isTrusted(h, trusted) {
			return h.String()
		}
		addr = h
	}
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
