package main

import (
	"io"

	"github.com/dcvaas/dcvaas/httpapi"
)

// printOpenAPI is `dcvaas openapi`: the document committed as OPENAPI.json.
func printOpenAPI(stdout io.Writer) error {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		return err
	}
	_, err = stdout.Write(doc)
	return err
}
