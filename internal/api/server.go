package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// DefaultSocket is where clients look for the daemon when neither a flag
// nor VXWIRE_SOCKET names a socket.
const DefaultSocket = "/run/vxwire/vxwire.sock"

// SocketEnv is the environment variable clients read the socket path from.
const SocketEnv = "VXWIRE_SOCKET"

// Backend is what the server exposes. Implementations must be safe for
// concurrent use; every request runs on its own goroutine.
type Backend interface {
	Status() Status
}

// Error is the body of every non-2xx response.
type Error struct {
	Message string `json:"error"`
}

// NewHandler returns the HTTP handler of the API.
func NewHandler(b Backend, l *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, l, http.StatusOK, b.Status())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, l, http.StatusNotFound, Error{Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, l *slog.Logger, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		l.Debug("cannot write api response", "error", err)
	}
}

// Listen creates the unix socket at path with mode 0660, creating its
// directory (0755) if needed. A stale socket left by a daemon that died is
// replaced; a socket that a live daemon still answers on is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create api socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("api socket %s is in use by another daemon", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot remove stale api socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on api socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot set api socket mode: %w", err)
	}
	return ln, nil
}

// Serve serves the API on ln until the server is closed. It returns the
// *http.Server so the caller can shut it down.
func Serve(ln net.Listener, b Backend, l *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           NewHandler(b, l),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(l.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.Error("api server stopped", "error", err)
		}
	}()
	return srv
}
