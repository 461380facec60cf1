// Package server holds the edge's two HTTP servers: the public one
// ([Server], fasthttp), where rules decide requests, and the admin listener
// ([Admin], net/http) for metrics, the dead-letter area and rule versions.
//
// It is the one place where errors become HTTP statuses: code attaches a
// status where an error is born (see httpError, the only error type that
// carries one) and never writes an error response itself; each server turns
// errors into responses in one function (Server.writeError,
// Admin.writeAdminError). Every public route that accepts events runs its
// rule (a wasm module from wasm/host, held in an edge/internal/ruleslot.Slot)
// on the request and, when the rule accepts with events, makes them durable
// in the spool before answering — a 2xx is never sent for events that a crash
// could lose, nor for events the aggregator could never store
// (internal/storable): those make the request a 500. The one public path
// without a rule is an [Asset]: the browser tracker (/et.js), answered from
// memory, compressed once at start-up, with an ETag.
//
// Lifetimes: bytes obtained from a fasthttp.RequestCtx are valid only until
// the handler returns. The rule call copies the request into guest memory and
// the spool copies events into its batch, both before the handler returns,
// so nothing here outlives the request. fasthttp types never leave this
// package.
package server
