// Package docs embeds the documents the binary serves: the local API's
// OpenAPI description (docs/openapi.json).
package docs

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the local API's OpenAPI 3 document.
func OpenAPI() []byte { return bytes.Clone(openAPI) }
