// Package dashboard is presenced's live web dashboard: a single page that
// follows the WebSocket stream (/v1/stream) and shows every user's presence,
// the counts by show, a chart of online users over the last ten minutes,
// the connection's state and the last sequence number applied.
//
// # How it fits
//
// Handler serves three embedded files (index.html, app.js, style.css) and
// nothing else; the page talks to the bridge's documented API only
// (docs/api.md), so it is served from the same origin as /v1/ and needs no
// configuration. The bridge mounts it at "/".
//
// # Design decisions
//
// No framework, no build step, no CDN: plain modern JavaScript and CSS,
// embedded with embed.FS, so the binary is the whole deployment and the page
// works offline and under a strict Content-Security-Policy ('self' only).
//
// The page keeps its state the way docs/websocket.md says a client should:
// every snapshot frame replaces it, change frames (alone or batched in a
// "changes" message) are applied in sequence order, and the per-user
// resource list is kept from the snapshot plus the online, changed and
// offline events, while the user's aggregate is taken as sent. The page
// subscribes without a filter, so the numbers have no gaps: a gap means the
// state is wrong, and the page reconnects for a fresh snapshot. It
// reconnects with exponential backoff (0.5s doubling to 30s, with jitter)
// and resume=<last seq>, so a short outage costs no snapshot; a new token
// starts afresh, since it may see other users.
//
// The access token, kept in localStorage, travels as the access_token query
// parameter on the WebSocket URL (browsers cannot set headers there) and as
// "Authorization: Bearer" on fetches; since a failed WebSocket handshake is
// opaque to a page, a HEAD of /v1/presence tells apart a rejected token from
// a server that is down.
//
// The chart is drawn by hand on a canvas: one sample per second, 600 kept,
// none while disconnected (the line breaks there rather than draw a guess).
// The elements tests rely on are stable: each user row carries
// data-jid="<bare jid>", with the show in an element of class "show" and the
// status text in one of class "status".
package dashboard
