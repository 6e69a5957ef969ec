package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

// newServer serves a fresh fake backend on a socket in a temporary
// directory and returns the socket's path, the backend and a client.
func newServer(tb testing.TB) (string, *apitest.Backend, *api.Client) {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "api.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		tb.Fatal(err)
	}
	b := apitest.New()
	srv := api.Serve(ln, b, safe.Reporter{L: slog.New(slog.DiscardHandler)})
	tb.Cleanup(func() { srv.Close() })
	return sock, b, api.NewClient(sock)
}

// raw sends body as is and returns the status code and the error message
// of the answer (empty for 2xx answers).
func raw(tb testing.TB, sock, method, path string, body io.Reader) (int, string) {
	tb.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://vxwire"+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e api.Error
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(data, &e); err != nil {
			tb.Fatalf("%s %s: error answer %q is not JSON: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, e.Message
}

func TestRoutes(t *testing.T) {
	_, b, c := newServer(t)
	ctx := context.Background()
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", MTU: 1450, Egress: true})
	b.SetStatus(api.Status{Host: "h1", Peers: []api.PeerStatus{{Name: "h2", Address: "198.18.0.2:4789"}}})

	no := false
	red, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "red", Subnet: "10.88.0.0/24", Encrypted: true, Egress: &no})
	if err != nil {
		t.Fatal(err)
	}
	want := api.Network{Name: "red", VNI: 257, Subnet: "10.88.0.0/24", Gateway: "10.88.0.1", MTU: 1450, Encrypted: true, Source: "api"}
	if !reflect.DeepEqual(red, want) {
		t.Fatalf("created %+v, want %+v", red, want)
	}
	ns, err := c.Networks(ctx)
	if err != nil || len(ns) != 2 || ns[0].Name != "blue" || ns[1].Name != "red" {
		t.Fatalf("networks %+v, %v", ns, err)
	}
	if n, err := c.Network(ctx, "red"); err != nil || !reflect.DeepEqual(n, want) {
		t.Fatalf("network red: %+v, %v", n, err)
	}

	ep, err := c.Attach(ctx, api.AttachRequest{Network: "red", Name: "web", NetNS: "/run/netns/web",
		Aliases: []string{"www"}, ContainerID: "c0ffee"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Address != "10.88.0.2/24" || ep.IfName != "eth0" || ep.Gateway != "10.88.0.1" || ep.ContainerID != "c0ffee" {
		t.Fatalf("endpoint %+v", ep)
	}
	eps, err := c.Endpoints(ctx)
	if err != nil || len(eps) != 1 || !reflect.DeepEqual(eps[0], ep) {
		t.Fatalf("endpoints %+v, %v", eps, err)
	}
	if n, _ := c.Network(ctx, "red"); n.Endpoints != 1 {
		t.Fatalf("red has %d endpoints, want 1", n.Endpoints)
	}
	ps, err := c.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "h2" {
		t.Fatalf("peers %+v, %v", ps, err)
	}
	if err := c.Detach(ctx, api.DetachRequest{ContainerID: "c0ffee"}); err != nil {
		t.Fatal(err)
	}
	// Detaching what is not attached succeeds: runtimes retry.
	if err := c.Detach(ctx, api.DetachRequest{Network: "red", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNetwork(ctx, "red"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Network(ctx, "red"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("removed network: %v", err)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	sock, _, _ := newServer(t)
	for _, path := range []string{"/v1/networks", "/v1/endpoints", "/v1/endpoints?all=1", "/v1/peers"} {
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		resp, err := hc.Get("http://vxwire" + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(data)) != "[]" {
			t.Errorf("GET %s: %q, want []", path, data)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	_, b, c := newServer(t)
	ctx := context.Background()
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1"})
	if _, err := c.Attach(ctx, api.AttachRequest{Network: "blue", Name: "db", NetNS: "/run/netns/db"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		call     func() error
		sentinel error
		code     int
		msg      string
	}{
		{"inspect unknown", func() error { _, err := c.Network(ctx, "green"); return err },
			api.ErrNotFound, 404, `network "green": not found`},
		{"remove unknown", func() error { return c.RemoveNetwork(ctx, "green") },
			api.ErrNotFound, 404, `network "green"`},
		{"remove config network", func() error { return c.RemoveNetwork(ctx, "blue") },
			api.ErrInvalid, 400, "comes from the config file"},
		{"create duplicate", func() error {
			_, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "blue", Subnet: "10.9.0.0/24"})
			return err
		}, api.ErrConflict, 409, `network "blue" already exists`},
		{"create bad subnet", func() error {
			_, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "x", Subnet: "10.9.0.0/33"})
			return err
		}, api.ErrInvalid, 400, "is not a valid IPv4 prefix"},
		{"create without name", func() error { _, err := c.CreateNetwork(ctx, api.NetworkSpec{Subnet: "10.9.0.0/24"}); return err },
			api.ErrInvalid, 400, "network name is empty"},
		{"create without subnet", func() error { _, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "x"}); return err },
			api.ErrInvalid, 400, `network "x" has no subnet`},
		{"attach unknown network", func() error {
			_, err := c.Attach(ctx, api.AttachRequest{Network: "green", Name: "a", NetNS: "/run/netns/a"})
			return err
		}, api.ErrNotFound, 404, `network "green"`},
		{"attach taken name", func() error {
			_, err := c.Attach(ctx, api.AttachRequest{Network: "blue", Name: "db", NetNS: "/run/netns/db2"})
			return err
		}, api.ErrConflict, 409, `name "db" is taken`},
		{"attach without netns", func() error { _, err := c.Attach(ctx, api.AttachRequest{Network: "blue", Name: "x"}); return err },
			api.ErrInvalid, 400, "names no netns"},
		{"detach without names", func() error { return c.Detach(ctx, api.DetachRequest{Network: "blue"}) },
			api.ErrInvalid, 400, "needs network and name, or container_id"},
		{"remove with endpoints", func() error {
			if _, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "red", Subnet: "10.88.0.0/24"}); err != nil {
				return err
			}
			if _, err := c.Attach(ctx, api.AttachRequest{Network: "red", Name: "r", NetNS: "/run/netns/r"}); err != nil {
				return err
			}
			return c.RemoveNetwork(ctx, "red")
		}, api.ErrConflict, 409, "has endpoints attached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v does not wrap %v", err, tt.sentinel)
			}
			var re *api.ResponseError
			if !errors.As(err, &re) || re.Code != tt.code {
				t.Fatalf("error %#v, want code %d", err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not carry the daemon's message %q", err, tt.msg)
			}
		})
	}
}

func TestInternalError(t *testing.T) {
	_, b, c := newServer(t)
	b.Fail(errors.New("netlink said no"))
	err := c.RemoveNetwork(context.Background(), "blue")
	var re *api.ResponseError
	if !errors.As(err, &re) || re.Code != 500 || re.Message != "netlink said no" {
		t.Fatalf("error %#v", err)
	}
	for _, s := range []error{api.ErrNotFound, api.ErrConflict, api.ErrInvalid, api.ErrPermission} {
		if errors.Is(err, s) {
			t.Fatalf("500 wraps %v", s)
		}
	}
}

func TestStrictDecoding(t *testing.T) {
	sock, b, _ := newServer(t)
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1"})
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"unknown field", "POST", "/v1/networks", `{"name":"x","subnet":"10.9.0.0/24","colour":"red"}`, 400, `unknown field "colour"`},
		{"wrong type", "POST", "/v1/networks", `{"name":"x","subnet":"10.9.0.0/24","vni":"256"}`, 400, "cannot decode request body"},
		{"negative vni", "POST", "/v1/networks", `{"name":"x","subnet":"10.9.0.0/24","vni":-1}`, 400, "cannot decode"},
		{"not json", "POST", "/v1/endpoints", `network=blue`, 400, "cannot decode request body"},
		{"empty body", "POST", "/v1/endpoints", ``, 400, "empty request body"},
		{"trailing data", "POST", "/v1/endpoints", `{"network":"blue","name":"a","netns":"/n"} {}`, 400, "data after the JSON value"},
		{"array", "DELETE", "/v1/endpoints", `[]`, 400, "cannot decode"},
		{"detach unknown field", "DELETE", "/v1/endpoints", `{"network":"blue","name":"a","force":true}`, 400, `unknown field "force"`},
		{"too large", "POST", "/v1/endpoints", `{"network":"blue","name":"` + strings.Repeat("a", api.MaxRequestBody) + `"}`, 413, "exceeds 1048576 bytes"},
		{"too large trailing", "POST", "/v1/endpoints", `{"network":"blue","name":"a","netns":"/n"}` + strings.Repeat(" ", api.MaxRequestBody), 413, "exceeds"},
		{"wrong method", "PUT", "/v1/networks", `{}`, 405, "method PUT not allowed"},
		{"no such route", "GET", "/v2/status", ``, 404, "no such endpoint: GET /v2/status"},
		{"all not a boolean", "GET", "/v1/endpoints?all=yes", ``, 400, `all="yes": want 1 or 0`},
		{"accepted", "POST", "/v1/endpoints", `{"network":"blue","name":"a","netns":"/n"}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := raw(t, sock, tt.method, tt.path, strings.NewReader(tt.body))
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%d %q, want %d with %q", code, msg, tt.code, tt.msg)
			}
		})
	}
}

// TestBodyCapThroughClient checks that the client maps 413 to ErrInvalid.
func TestBodyCapThroughClient(t *testing.T) {
	_, b, c := newServer(t)
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1"})
	aliases := make([]string, api.MaxRequestBody/8)
	for i := range aliases {
		aliases[i] = "abcdefg"
	}
	_, err := c.Attach(context.Background(), api.AttachRequest{Network: "blue", Name: "a", NetNS: "/n", Aliases: aliases})
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("error %v", err)
	}
}

func TestRequestContextsAreBounded(t *testing.T) {
	_, b, c := newServer(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.NetworkSpec{Name: "red", Subnet: "10.88.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attach(ctx, api.AttachRequest{Network: "red", Name: "a", NetNS: "/n"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(ctx, api.DetachRequest{Network: "red", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNetwork(ctx, "red"); err != nil {
		t.Fatal(err)
	}
	for method, bound := range map[string]time.Duration{"CreateNetwork": api.ChangeTimeout, "Attach": api.AttachTimeout,
		"Detach": api.ChangeTimeout, "RemoveNetwork": api.ChangeTimeout} {
		got, ok := b.Bound(method)
		if !ok || got > bound || got < bound-5*time.Second {
			t.Errorf("%s: context had %v left (deadline %v), want about %v", method, got, ok, bound)
		}
	}
	if api.AttachTimeout < 30*time.Second {
		t.Errorf("AttachTimeout %v leaves no room for address claims", api.AttachTimeout)
	}
}

func TestUnreachable(t *testing.T) {
	c := api.NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Networks(context.Background())
	if !errors.Is(err, api.ErrUnreachable) || !strings.HasPrefix(err.Error(), "cannot reach the daemon at ") {
		t.Fatalf("error %v", err)
	}
}

func TestNetworkNameIsEscaped(t *testing.T) {
	_, b, c := newServer(t)
	b.AddConfigNetwork(api.Network{Name: "a/b c", VNI: 256, Subnet: "10.77.0.0/24"})
	if n, err := c.Network(context.Background(), "a/b c"); err != nil || n.Name != "a/b c" {
		t.Fatalf("network %+v, %v", n, err)
	}
}
