package client

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Sign returns the X-Hamustro-Signature of a request body sent at unixTime
// (the decimal epoch seconds that go into X-Hamustro-Time):
//
//	base64(sha256(unixTime + "|" + md5hex(body) + "|" + secret))
//
// The digest is the raw 32-byte SHA-256, encoded with standard base64 and
// padding, so a signature is always 44 characters long.
func Sign(unixTime string, body []byte, secret string) string {
	bodySum := md5.Sum(body)
	h := sha256.New()
	h.Write([]byte(unixTime))
	h.Write([]byte{'|'})
	h.Write([]byte(hex.EncodeToString(bodySum[:])))
	h.Write([]byte{'|'})
	h.Write([]byte(secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// SessionID returns the session of a tracker, the seed's GenerateSession:
//
//	md5hex(sha256hex(deviceID) + ":" + clientID + ":" + systemVersion + ":" + productVersion)
//
// deviceID is the app's raw device id; it is hashed here, exactly as the
// Collection's device_id field carries it (see [HashDeviceID]). Equivalently,
// the session is md5hex of the Collection's own device_id, client_id,
// system_version and product_version joined by ":".
func SessionID(deviceID, clientID, systemVersion, productVersion string) string {
	sum := md5.Sum([]byte(HashDeviceID(deviceID) + ":" + clientID + ":" + systemVersion + ":" + productVersion))
	return hex.EncodeToString(sum[:])
}

// HashDeviceID returns sha256hex(deviceID), the value sent in the
// Collection's device_id field. The raw device id never leaves the app.
func HashDeviceID(deviceID string) string {
	sum := sha256.Sum256([]byte(deviceID))
	return hex.EncodeToString(sum[:])
}
