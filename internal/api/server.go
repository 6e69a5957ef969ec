package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
)

// DefaultSocket is where clients look for the daemon when neither a flag
// nor VXWIRE_SOCKET names a socket.
const DefaultSocket = "/run/vxwire/vxwire.sock"

// SocketEnv is the environment variable clients read the socket path from.
const SocketEnv = "VXWIRE_SOCKET"

// MaxRequestBody is the largest request body the server reads; a larger
// one is refused with 413 before it is decoded.
const MaxRequestBody = 1 << 20

// Time bounds of a request's context. The server cancels the context it
// hands the Backend when the bound passes; clients wait a little longer
// than the longest bound so they see the server's answer.
const (
	// ReadTimeout bounds requests that only read state.
	ReadTimeout = 10 * time.Second
	// ChangeTimeout bounds requests that create or remove a network or
	// detach an endpoint.
	ChangeTimeout = 30 * time.Second
	// AttachTimeout bounds an attach, which may wait for a quorum of the
	// hosts to take a new address block.
	AttachTimeout = 45 * time.Second
	// ClientTimeout is how long a client waits for any answer: past the
	// longest server bound, so it sees the server's verdict rather than
	// giving up on an attach the daemon is about to complete.
	ClientTimeout = AttachTimeout + 5*time.Second
)

// Backend is what the server exposes. Implementations must be safe for
// concurrent use; every request runs on its own goroutine, and the
// context handed to Runtime methods is cancelled when the request's time
// bound passes or the client goes away.
type Backend interface {
	Status() Status
	Runtime
}

// Error is the body of every non-2xx response.
type Error struct {
	Message string `json:"error"`
}

// NewHandler returns the HTTP handler of the API. It does not check who
// is calling: Serve puts the peer-credential check in front of it.
func NewHandler(b Backend, l *slog.Logger) http.Handler {
	s := &server{b: b, l: l}
	mux := http.NewServeMux()
	route := func(pattern string, bound time.Duration, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.handle(bound, h))
	}
	route("GET /v1/status", ReadTimeout, s.status)
	route("GET /v1/peers", ReadTimeout, s.peers)
	route("GET /v1/networks", ReadTimeout, s.networks)
	route("POST /v1/networks", ChangeTimeout, s.createNetwork)
	route("GET /v1/networks/{name}", ReadTimeout, s.network)
	route("DELETE /v1/networks/{name}", ChangeTimeout, s.removeNetwork)
	route("GET /v1/endpoints", ReadTimeout, s.endpoints)
	route("POST /v1/endpoints", AttachTimeout, s.attach)
	route("DELETE /v1/endpoints", ChangeTimeout, s.detach)
	s.routePublishes(route)
	s.routeServices(route)
	for _, p := range []string{"/v1/status", "/v1/peers", "/v1/networks", "/v1/networks/{name}", "/v1/endpoints"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, l, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, l, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// server holds the routes' shared state.
type server struct {
	b Backend
	l *slog.Logger
}

// handle bounds the request's context by bound and turns a returned
// error into a JSON error answer.
func (s *server) handle(bound time.Duration, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), bound)
		defer cancel()
		if err := h(w, r.WithContext(ctx)); err != nil {
			code := statusOf(err)
			if code == http.StatusInternalServerError {
				s.l.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			}
			writeError(w, s.l, code, err.Error())
		}
	})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, s.l, http.StatusOK, s.b.Status())
	return nil
}

func (s *server) peers(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, s.l, http.StatusOK, nonNil(s.b.Status().Peers))
	return nil
}

func (s *server) networks(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, s.l, http.StatusOK, nonNil(s.b.Networks()))
	return nil
}

func (s *server) network(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.Network(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, s.l, http.StatusOK, n)
	return nil
}

func (s *server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var spec NetworkSpec
	if err := decodeRequest(w, r, &spec); err != nil {
		return err
	}
	if err := checkSpec(spec); err != nil {
		return err
	}
	n, err := s.b.CreateNetwork(r.Context(), spec)
	if err != nil {
		return err
	}
	writeJSON(w, s.l, http.StatusCreated, n)
	return nil
}

func (s *server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.RemoveNetwork(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) endpoints(w http.ResponseWriter, r *http.Request) error {
	switch all := r.URL.Query().Get("all"); all {
	case "", "0", "false":
	case "1", "true":
		writeJSON(w, s.l, http.StatusOK, nonNil(s.b.AllEndpoints()))
		return nil
	default:
		return fmt.Errorf("%w: all=%q: want 1 or 0", ErrInvalid, all)
	}
	writeJSON(w, s.l, http.StatusOK, nonNil(s.b.Endpoints()))
	return nil
}

func (s *server) attach(w http.ResponseWriter, r *http.Request) error {
	var req AttachRequest
	if err := decodeRequest(w, r, &req); err != nil {
		return err
	}
	if err := checkAttach(req); err != nil {
		return err
	}
	ctx := r.Context()
	if req.TAPFD {
		var h *tapHolder
		var err error
		if ctx, h, err = withPassedTAP(r); err != nil {
			return err
		}
		defer h.release()
	}
	ep, err := s.b.Attach(ctx, req)
	if err != nil {
		return err
	}
	writeJSON(w, s.l, http.StatusCreated, ep)
	return nil
}

func (s *server) detach(w http.ResponseWriter, r *http.Request) error {
	var req DetachRequest
	if err := decodeRequest(w, r, &req); err != nil {
		return err
	}
	if err := checkDetach(req); err != nil {
		return err
	}
	if err := s.b.Detach(r.Context(), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkSpec rejects specs that miss what no default can fill; the
// Backend checks everything else.
func checkSpec(spec NetworkSpec) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("%w: network name is empty", ErrInvalid)
	case spec.Subnet == "":
		return fmt.Errorf("%w: network %q has no subnet", ErrInvalid, spec.Name)
	}
	return nil
}

func checkAttach(req AttachRequest) error {
	switch {
	case req.Network == "":
		return fmt.Errorf("%w: attach names no network", ErrInvalid)
	case req.NetNS == "":
		return fmt.Errorf("%w: attach names no netns", ErrInvalid)
	case req.TAPFD && req.Handoff:
		return fmt.Errorf("%w: tap_fd and handoff exclude each other", ErrInvalid)
	}
	return nil
}

func checkDetach(req DetachRequest) error {
	if req.ContainerID == "" && (req.Network == "" || req.Name == "") {
		return fmt.Errorf("%w: detach needs network and name, or container_id", ErrInvalid)
	}
	return nil
}

// requestError is a request the server could not decode; it maps to
// 400, or to 413 when the body is too large.
type requestError struct {
	code int
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return ErrInvalid }

// decodeRequest decodes the request body into v strictly: unknown
// fields, trailing data and bodies over MaxRequestBody are errors.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxRequestBody)
	if err := DecodeStrict(body, v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &requestError{code: http.StatusRequestEntityTooLarge,
				err: fmt.Errorf("%w: request body exceeds %d bytes", ErrInvalid, mbe.Limit)}
		}
		return &requestError{code: http.StatusBadRequest, err: err}
	}
	return nil
}

// DecodeStrict decodes exactly one JSON value from rd into v, rejecting
// unknown fields and anything after the value. Errors wrap ErrInvalid.
func DecodeStrict(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty request body", ErrInvalid)
		}
		return fmt.Errorf("%w: cannot decode request body: %w", ErrInvalid, err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
	}
	return fmt.Errorf("%w: request body has data after the JSON value", ErrInvalid)
}

// statusOf maps an error to its HTTP status code.
func statusOf(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.code
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeError(w http.ResponseWriter, l *slog.Logger, code int, msg string) {
	writeJSON(w, l, code, Error{Message: msg})
}

func writeJSON(w http.ResponseWriter, l *slog.Logger, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		l.Debug("cannot write api response", "error", err)
	}
}

// Serve serves the API on ln until the server is closed, refusing with
// 403 every caller that Authorize does not let in. A listener made by
// Listen carries the permitted group; any other unix listener permits
// only root and the daemon's own user; a listener of another kind
// yields no peer credentials, so every request is refused. Serve returns
// the *http.Server so the caller can shut it down.
//
// Panics go to rep (see package safe). A request whose handler panics is
// answered 500, logged at Error with its stack and counted as
// RecoveredRequest; the daemon keeps serving, since the panic concerns
// that one request and the goroutine serving it ends normally. If the
// accept loop stops with an error other than a shutdown, it is reported
// to rep.Died: a daemon nobody can reach should not limp on.
func Serve(ln net.Listener, b Backend, rep safe.Reporter) *http.Server {
	l := rep.L
	if l == nil {
		l = slog.Default()
	}
	cl, ok := ln.(*credListener)
	if !ok {
		cl = newCredListener(ln, -1)
	}
	srv := &http.Server{
		Handler:           cl.authorize(recoverRequests(NewHandler(b, l), rep, l), l),
		ConnContext:       connContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(l.Handler(), slog.LevelDebug),
	}
	rep.Go("api server", func() {
		if err := srv.Serve(cl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rep.Fail("api server", fmt.Errorf("api server stopped: %w", err))
		}
	})
	return srv
}

// RecoveredRequest is the kind under which Serve counts requests whose
// handler panicked (api.Status.Recovered).
const RecoveredRequest = "api request"

// recoverRequests answers 500 to a request whose handler panics, after
// rep logged and counted the panic. net/http would recover it too, but
// log it only at the server's ErrorLog level (Debug here) and count
// nothing.
func recoverRequests(h http.Handler, rep safe.Reporter, l *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer rep.Recover(RecoveredRequest, func() {
			// If the handler wrote its header already, this one is
			// ignored and the client sees a truncated body.
			writeError(w, l, http.StatusInternalServerError, "internal error; see the daemon's log")
		})
		h.ServeHTTP(w, r)
	})
}
