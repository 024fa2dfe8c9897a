module github.com/presenced/presenced

go 1.26

require (
	github.com/gorilla/websocket v1.5.3
	mellium.im/xmpp v0.22.0
)

require (
	golang.org/x/net v0.29.0 // indirect
	golang.org/x/text v0.18.0 // indirect
	mellium.im/reader v0.1.0 // indirect
	mellium.im/xmlstream v0.15.4 // indirect
)
