package cookiesync

import (
	"errors"
	"strings"
)

// Why a consent string is undecodable.
var (
	errConsentAlphabet = errors.New("gdpr_consent is not base64url")
	errConsentShort    = errors.New("gdpr_consent is too short for a TCF v2 core string")
	errConsentVersion  = errors.New("gdpr_consent is not a TCF v2 string (version is not 2)")
	errConsentVendors  = errors.New("gdpr_consent has a vendor consent section that does not fit its length")
	errConsentRange    = errors.New("gdpr_consent has a vendor range outside 1..MaxVendorId or with start after end")
)

// Bit offsets in a TCF v2 core string.
const (
	tcfVersion         = 0   // 6 bits
	tcfCmpID           = 78  // 12
	tcfVendorList      = 120 // 12
	tcfPurposesConsent = 152 // 24, purpose 1 first
	tcfMaxVendorID     = 213 // 16
	tcfIsRange         = 229 // 1
	tcfBitField        = 230 // MaxVendorId bits, vendor 1 first
	tcfNumEntries      = 230 // 12
	tcfEntries         = 242 // {IsARange 1, Start 16, [End 16]}...
)

// Consent is what the rule reads of a TCF v2 TC string: its core segment
// (the part before the first '.'), read bit by bit straight from the
// base64url text so that nothing is allocated. ParseConsent has checked that
// every field it reads is within the string.
type Consent struct {
	core  string // base64url text of the core segment, without padding
	nbits int    // bits of whole decoded bytes

	Version           int
	CMPID             int
	VendorListVersion int
	MaxVendorID       int
	RangeEncoded      bool
	numEntries        int
}

// ParseConsent decodes the core segment of a TCF v2 TC string: base64url
// without padding (trailing '=' are tolerated), version 2, and a vendor
// consent section, bit field or ranges, that fits the string.
func ParseConsent(s string) (Consent, error) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	for n := 0; n < 2 && strings.HasSuffix(s, "="); n++ {
		s = s[:len(s)-1]
	}
	c := Consent{core: s}
	for i := 0; i < len(s); i++ {
		if b64Values[s[i]] < 0 {
			return c, errConsentAlphabet
		}
	}
	if len(s)%4 == 1 { // 6 bits left over: not whole bytes
		return c, errConsentAlphabet
	}
	c.nbits = len(s) * 6 / 8 * 8
	if c.nbits < tcfIsRange+1 {
		return c, errConsentShort
	}
	c.Version = c.uint(tcfVersion, 6)
	if c.Version != 2 {
		return c, errConsentVersion
	}
	c.CMPID = c.uint(tcfCmpID, 12)
	c.VendorListVersion = c.uint(tcfVendorList, 12)
	c.MaxVendorID = c.uint(tcfMaxVendorID, 16)
	c.RangeEncoded = c.bit(tcfIsRange)
	if !c.RangeEncoded {
		if tcfBitField+c.MaxVendorID > c.nbits {
			return c, errConsentVendors
		}
		return c, nil
	}
	if tcfEntries > c.nbits {
		return c, errConsentVendors
	}
	c.numEntries = c.uint(tcfNumEntries, 12)
	off := tcfEntries
	for i := 0; i < c.numEntries; i++ {
		if off+17 > c.nbits {
			return c, errConsentVendors
		}
		isRange := c.bit(off)
		start, end := c.uint(off+1, 16), 0
		off += 17
		if isRange {
			if off+16 > c.nbits {
				return c, errConsentVendors
			}
			end = c.uint(off, 16)
			off += 16
		} else {
			end = start
		}
		if start < 1 || start > end || end > c.MaxVendorID {
			return c, errConsentRange
		}
	}
	return c, nil
}

// Purpose reports consent to purpose n (1–24).
func (c *Consent) Purpose(n int) bool {
	return n >= 1 && n <= 24 && c.bit(tcfPurposesConsent+n-1)
}

// Vendor reports consent for vendor id.
func (c *Consent) Vendor(id int) bool {
	if id < 1 || id > c.MaxVendorID {
		return false
	}
	if !c.RangeEncoded {
		return c.bit(tcfBitField + id - 1)
	}
	off := tcfEntries
	for i := 0; i < c.numEntries; i++ {
		isRange := c.bit(off)
		start, end := c.uint(off+1, 16), 0
		off += 17
		if isRange {
			end = c.uint(off, 16)
			off += 16
		} else {
			end = start
		}
		if start <= id && id <= end {
			return true
		}
	}
	return false
}

// bit returns bit i (0 is the most significant bit of the first byte).
func (c *Consent) bit(i int) bool {
	return b64Values[c.core[i/6]]>>(5-i%6)&1 == 1
}

// uint returns the n-bit big-endian number at bit off, taking up to six bits
// (one character) at a time.
func (c *Consent) uint(off, n int) int {
	v := 0
	for n > 0 {
		used := off % 6
		take := 6 - used
		if take > n {
			take = n
		}
		ch := int(b64Values[c.core[off/6]])
		v = v<<take | ch>>(6-used-take)&(1<<take-1)
		off += take
		n -= take
	}
	return v
}

// b64Values maps a base64url character to its value, and every other byte
// to -1.
var b64Values = func() (t [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()
