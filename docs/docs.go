// Package docs embeds the documents that presenced serves itself: the
// OpenAPI description of the API (served at /v1/openapi.yaml). The rest of
// this folder is prose for people.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
