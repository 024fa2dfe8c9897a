// Command presenced-watch prints presenced's live change feed in a
// terminal, one line per change, after a summary of the snapshot. It is a
// plain client of the WebSocket API (GET /v1/stream), used by the demo.
//
//	presenced-watch -url ws://127.0.0.1:8080/v1/stream
package main
