package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type echoReq struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func newMux(t *testing.T) *api.Mux {
	m := api.NewMux(slog.New(slog.NewTextHandler(t.Output(), nil)), nil)
	m.Handle("test.echo", func(ctx context.Context, r *api.Request) (any, error) {
		req, err := api.Decode[echoReq](r.Body)
		if err != nil {
			return nil, err
		}
		if req.Name == "" {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "name is required")
		}
		return req, nil
	})
	m.Handle("test.panic", func(context.Context, *api.Request) (any, error) { panic("boom") })
	m.Handle("test.fail", func(context.Context, *api.Request) (any, error) { return nil, io.ErrUnexpectedEOF })
	return m
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(newMux(t))
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/api/v1/test.echo", `{"name":"a","n":2}`, 200, `{"name":"a","n":2}`},
		{"POST", "/api/v1/test.echo", `{"name":""}`, 400, `"code":"invalid_argument","message":"name is required"`},
		{"POST", "/api/v1/test.echo", `{"name":"a","extra":1}`, 400, `unknown field`},
		{"POST", "/api/v1/test.echo", `{"name":`, 400, `malformed request body`},
		{"POST", "/api/v1/test.echo", `{"name":"a"} {}`, 400, `trailing data`},
		{"POST", "/api/v1/test.echo", `{"n":"x"}`, 400, `invalid_argument`},
		{"GET", "/api/v1/test.echo", ``, 400, `use POST`},
		{"POST", "/api/v1/no.such", `{}`, 404, `unknown operation`},
		{"POST", "/api/v1/", `{}`, 404, `not_found`},
		{"POST", "/api/v1/test.panic", `{}`, 500, `{"code":"internal","message":"internal error"}`},
		{"POST", "/api/v1/test.fail", `{}`, 500, `{"code":"internal","message":"internal error"}`},
		{"POST", "/api/v1/test.echo", `{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, 413, `too_large`},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s %.40q = %d %.200s; want %d containing %q", tc.method, tc.path, tc.body, resp.StatusCode, b, tc.status, tc.want)
		}
	}
}

// FuzzCall: no request body makes a handler panic the mux or answer
// anything but JSON or a coded error.
func FuzzCall(f *testing.F) {
	for _, s := range []string{`{"name":"a","n":1}`, `{}`, ``, `[]`, `{"name":null}`, `{"n":1e400}`, "\xff"} {
		f.Add([]byte(s))
	}
	m := api.NewMux(slog.New(slog.DiscardHandler), nil)
	m.Handle("test.echo", func(ctx context.Context, r *api.Request) (any, error) {
		return api.Decode[echoReq](r.Body)
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := m.Call(context.Background(), &api.Request{Op: "test.echo", Body: body})
		if err != nil {
			if mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
				t.Fatalf("Call(%q) = %v, want invalid_argument", body, err)
			}
			return
		}
		if len(out) == 0 || out[0] != '{' {
			t.Fatalf("Call(%q) = %q", body, out)
		}
	})
}
