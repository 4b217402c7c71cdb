// Package openapitest holds votewatch's HTTP API to its OpenAPI document
// (handlers/openapi.yaml) in tests: every exchange made through Client is
// checked with kin-openapi's openapi3filter, and one that breaks the
// contract fails the request, so the test that made it reports it.
//
// kin-openapi validates OpenAPI 3.1 documents with a JSON Schema 2020-12
// validator (openapi3filter turns it on for 3.1 documents), which is what
// the document is written in: type arrays with "null", propertyNames.
package openapitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/votewatch/votewatch/handlers"
)

// Contract is the loaded document and a router over its paths. It is safe
// for concurrent use.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
}

var loaded struct {
	once sync.Once
	c    *Contract
	err  error
}

// Load parses and validates handlers' embedded OpenAPI document, once per
// test binary.
func Load(tb testing.TB) *Contract {
	tb.Helper()
	loaded.once.Do(func() { loaded.c, loaded.err = Parse(handlers.OpenAPIYAML()) })
	if loaded.err != nil {
		tb.Fatalf("openapi.yaml: %v", loaded.err)
	}
	return loaded.c
}

// Parse loads and validates an OpenAPI document.
func Parse(doc []byte) (*Contract, error) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := t.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	router, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Contract{doc: t, router: router}, nil
}

// Doc returns the parsed document.
func (c *Contract) Doc() *openapi3.T { return c.doc }

// Client returns an HTTP client whose every exchange is checked: a response
// that breaks the contract comes back as the request's error.
func (c *Contract) Client() *http.Client {
	return &http.Client{Transport: c.Transport(nil)}
}

// Transport wraps next (http.DefaultTransport when nil) so that every
// exchange is checked.
func (c *Contract) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{c: c, next: next}
}

type roundTripper struct {
	c    *Contract
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		sent := req.Clone(req.Context())
		sent.Body = io.NopCloser(bytes.NewReader(reqBody))
		req = sent
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if mediaType(resp.Header) == "text/event-stream" {
		// A stream does not end: its status and headers are checked now,
		// each event's data as the test reads it.
		if err := rt.c.check(req, reqBody, resp.StatusCode, resp.Header, nil, false); err != nil {
			_ = resp.Body.Close()
			return nil, err
		}
		resp.Body = &eventChecker{c: rt.c, body: resp.Body, lines: bufio.NewReader(resp.Body)}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := rt.c.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		return nil, err
	}
	return resp, nil
}

// Check checks one exchange against the contract:
//   - a documented route: the response (status, headers, body) must be
//     one the operation documents; and a request the document refuses
//     (a body, parameter or credential it does not allow) must have been
//     refused with a 4xx;
//   - a path the document does not have: a 4xx with the error shape;
//   - a documented path with another method: a 405 with the error shape
//     and an Allow header.
func (c *Contract) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	return c.check(req, reqBody, status, header, body, true)
}

// CheckResponse checks only that the response is one the document allows
// for the request's route, whether or not the document allows the request
// (for fuzzing, where the two validators' edge cases may differ).
func (c *Contract) CheckResponse(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	return c.checkExchange(req, reqBody, status, header, body, true, false)
}

func (c *Contract) check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte, withBody bool) error {
	return c.checkExchange(req, reqBody, status, header, body, withBody, true)
}

func (c *Contract) checkExchange(req *http.Request, reqBody []byte, status int, header http.Header, body []byte, withBody, requestRule bool) error {
	ctx := context.Background()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("openapi contract: %s %s answered %d: %s\n%s", req.Method, req.URL.RequestURI(), status, fmt.Sprintf(format, args...), truncate(body))
	}
	probe := req.Clone(ctx)
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(probe)
	if err != nil {
		var re *routers.RouteError
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			if status != http.StatusMethodNotAllowed || header.Get("Allow") == "" {
				return fail("the document has this path but not this method: want 405 with Allow")
			}
		case errors.Is(err, routers.ErrPathNotFound) || errors.As(err, &re):
			if status < 400 || status >= 500 {
				return fail("the path is not in the document, yet it was served")
			}
		default:
			return fail("find route: %v", err)
		}
		if err := c.checkError(header, body); err != nil {
			return fail("%v", err)
		}
		return nil
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:  bearerPresent,
		SkipSettingDefaults: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && requestRule && (status < 400 || status >= 500) {
		return fail("the document refuses this request (%v), the server did not", reqErr)
	}
	if status == http.StatusNotModified && route.Operation.Responses.Status(status) == nil {
		return fail("304 is not documented for %s", route.Operation.OperationID)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: !withBody},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fail("%v", err)
	}
	return nil
}

// checkError checks an answer against the document's Error schema.
func (c *Contract) checkError(header http.Header, body []byte) error {
	if mt := mediaType(header); mt != "application/json" {
		return fmt.Errorf("Content-Type %q, want the JSON error shape", header.Get("Content-Type"))
	}
	return c.checkSchema("Error", body)
}

// checkSchema checks a JSON value against a component schema.
func (c *Contract) checkSchema(name string, raw []byte) error {
	ref := c.doc.Components.Schemas[name]
	if ref == nil {
		return fmt.Errorf("no schema %s in the document", name)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("does not match schema %s: %w", name, err)
	}
	return nil
}

// bearerPresent is what the document's bearer scheme asks of a request: an
// Authorization: Bearer header with a token. Whether the token is known is
// the server's business (401).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return errors.New("no bearer token")
	}
	return nil
}

// eventChecker checks each `dashboard` event of a live stream against the
// Dashboard schema as the test reads it; a bad one fails the read.
type eventChecker struct {
	c     *Contract
	body  io.ReadCloser
	lines *bufio.Reader
	event string
	buf   []byte
}

func (e *eventChecker) Read(p []byte) (int, error) {
	for len(e.buf) == 0 {
		line, err := e.lines.ReadBytes('\n')
		if len(line) > 0 {
			if err := e.see(line); err != nil {
				return 0, err
			}
			e.buf = line
		}
		if err != nil {
			if len(e.buf) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(p, e.buf)
	e.buf = e.buf[n:]
	return n, nil
}

func (e *eventChecker) see(line []byte) error {
	s := strings.TrimRight(string(line), "\r\n")
	switch {
	case s == "":
		e.event = ""
	case strings.HasPrefix(s, "event:"):
		e.event = strings.TrimSpace(strings.TrimPrefix(s, "event:"))
	case strings.HasPrefix(s, "data:") && e.event == "dashboard":
		if err := e.c.checkSchema("Dashboard", []byte(strings.TrimPrefix(strings.TrimPrefix(s, "data:"), " "))); err != nil {
			return fmt.Errorf("openapi contract: stream event: %w", err)
		}
	}
	return nil
}

func (e *eventChecker) Close() error { return e.body.Close() }

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

func truncate(b []byte) string {
	const max = 600
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
