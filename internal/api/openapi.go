package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"gopkg.in/yaml.v3"
)

// openapiYAML is the OpenAPI 3.1 document of the API as written
// (openapi.yaml beside this file).
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIJSON returns the OpenAPI 3.1 document of the API (openapi.yaml
// beside this file) as JSON, the keys in the order written. GET
// /api/v1/openapi.json serves it.
func OpenAPIJSON() ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	if err := writeYAMLAsJSON(&buf, &doc); err != nil {
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writeYAMLAsJSON writes n as JSON: mappings as objects in their order,
// sequences as arrays, scalars by their resolved tag. Anchors and aliases
// are followed; keys must be strings.
func writeYAMLAsJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeYAMLAsJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeYAMLAsJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeYAMLAsJSON(buf, v); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeYAMLAsJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		var v any
		switch n.Tag {
		case "!!str", "!!binary", "!!timestamp":
			v = n.Value // a date stays the text written, as JSON has no dates
		default:
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
		return nil
	}
	return fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

// openAPIHandler serves doc, the document as JSON.
func openAPIHandler(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}
}
