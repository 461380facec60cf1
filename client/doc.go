// Package client is the Go SDK for sending tracking events to an edgetrack
// edge (or any collector) with the Hamustro client protocol: signed protobuf
// Collections posted to /api/v1/track.
//
// An app creates one [Tracker] when it opens, calls [Tracker.TrackEvent] for
// each event, and [Tracker.Close] when it exits (with [Tracker.Flush] before
// it if queued events should go out now):
//
//	t, err := client.New(client.Config{
//		CollectorURL: "https://edge.example.com", SharedSecret: secret,
//		DeviceID: deviceID, ClientID: "shop-ios", SystemVersion: "17.4",
//		ProductVersion: "2.3.0", Dir: filepath.Join(cacheDir, "edgetrack"),
//	})
//	...
//	err = t.TrackEvent(ctx, "purchase", userID, `{"sku":"A1"}`, false)
//
// # The protocol as this package reads it
//
// The seed (the "Pseudo Client for Tracking") fixes the function set; this
// package maps it as follows. ClientTracker is [Config] plus [New];
// GenerateSession is [SessionID], computed once in New; LoadCollections,
// LoadNumberPerSession and LoadLastSyncTime are methods of the same names;
// TrackEvent is [Tracker.TrackEvent].
//
//   - Device id. The seed says "device_id: required, please sha256hex it" and
//     derives the session from sha256hex(device_id). Config.DeviceID is the
//     raw id; the Collection's device_id field carries sha256hex(DeviceID)
//     ([HashDeviceID]) and the session is
//     md5hex(sha256hex(DeviceID):ClientID:SystemVersion:ProductVersion), which
//     is also md5hex of the Collection's own fields joined by ":" — the form
//     the collector can check.
//   - nr. The serial number of an event within its session, starting at 1,
//     persisted with the event, so it continues after a restart or a crash
//     and is never reused, not even after the events were sent.
//   - at is the Clock time in whole epoch seconds (UTC); ip is Config.IP or
//     the value of [Tracker.SetIP], omitted when empty. user_id 0 and empty
//     params are omitted; is_testing is always sent.
//   - Success is exactly 200. The seed says to wait for 200 before deleting;
//     this package never posts an empty Collection, so a 204 (or 201, or any
//     other answer, or no answer) means the events are kept and sent again.
//   - "Sign them as Sent, but don't delete them before a 200": instead of a
//     sent mark, only one send round runs at a time, and after a 200 exactly
//     the keys that were in the request are deleted; events tracked while a
//     request is in flight are untouched and go in the next one.
//   - The triggers are checked after each TrackEvent: at least QueueSize
//     unsent events, or the last sync before now - QueueRetention. A store
//     that has never had a 200 counts the time it was first opened (by any
//     Tracker, persisted) as its last sync, so the retention trigger also
//     fires for an app that is restarted often but rarely reaches QueueSize.
//
// # Durability and delivery
//
// Events live in a Pebble database in Config.Dir. TrackEvent returns only
// after the event is committed with a synced WAL write, so an event that was
// acknowledged to the app survives a crash of the app or the machine. Each
// event is stored under its session, and each session's attributes (hashed
// device id, client id, versions, system, git hash) are stored once, so events
// of earlier sessions — left over from a failed send before an app update —
// are sent in their own Collection with their own attributes. System and
// ProductGitHash are not part of the session; if they change while the
// session stays the same, the latest tracker's values are sent.
//
// Sending posts one Collection per session, at most MaxPayloadsPerRequest
// payloads per request. Events are deleted, in the same synced batch that
// records the new last sync time, only after the collector answered 200.
// Delivery is at least once: a crash between the 200 and that delete, or a
// 200 lost on the way back, sends the events again, each payload exactly as
// before, and the collector deduplicates them: its event id is made from the
// session, the nr and the payload's content.
//
// # Background sending and backoff
//
// A triggered send runs in one background goroutine, one round at a time,
// so TrackEvent never waits for the network. After a failed round the
// tracker backs off: the pause starts at BackoffMin, doubles with each
// consecutive failure up to BackoffMax, is jittered to between half and all
// of that, and is extended to a collector's Retry-After (up to BackoffMax).
// While backing off, triggers do not send; [Tracker.Flush] always tries, and
// a successful round ends the backoff. Within a round, a session the
// collector answered with an error is skipped and the next one tried; a
// transport error (timeout, refused connection) ends the round.
//
// # Concurrency
//
// All Tracker methods are safe for concurrent use. TrackEvent calls are
// serialised around the synced write, which makes the nrs of a session unique
// and gap-free in the order the events were stored (an event whose write
// fails does not use up its nr). One Tracker may use a directory at a time.
package client
