package handlers

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the API's contract, written by hand next to the handlers
// it describes; the JSON served is converted from it, so there is one
// source.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIPath is where the API serves its OpenAPI document.
const OpenAPIPath = "/api/v1/openapi.json"

// OpenAPIYAML returns the API's OpenAPI 3.1 document as written.
func OpenAPIYAML() []byte { return append([]byte(nil), openAPIYAML...) }

// OpenAPIJSON returns the API's OpenAPI 3.1 document as JSON, as served at
// OpenAPIPath. It fails only if the embedded document is not valid YAML of
// JSON's data model (a map key that is not a string, say).
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	v, err := jsonValue(doc, "")
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return b, nil
}

// jsonValue checks that a decoded YAML value has a JSON form: YAML allows
// map keys of any type, JSON only strings (an unquoted status code such as
// 200: would otherwise be lost).
func jsonValue(v any, at string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			y, err := jsonValue(x, at+"/"+k)
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
		return v, nil
	case map[any]any:
		return nil, fmt.Errorf("%s: a map key that is not a string (quote it)", at)
	case []any:
		for i, x := range v {
			y, err := jsonValue(x, fmt.Sprintf("%s/%d", at, i))
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
		return v, nil
	case nil, string, bool, int, int64, uint64, float64:
		return v, nil
	default:
		return nil, fmt.Errorf("%s: a %T has no JSON form (quote it)", at, v)
	}
}

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(a.openapi)
}
