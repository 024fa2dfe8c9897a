package bridge

import _ "embed"

// openAPI is the OpenAPI description of the API, served at
// /v1/openapi.yaml; it lives beside the code it describes, and
// TestEveryRouteIsDocumented and the response checks keep the two true.
//
//go:embed openapi.yaml
var openAPI []byte
