package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/pushserver"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go"
)

// PushSecretFile is where a node keeps its generated push secret, in its
// data dir.
const PushSecretFile = "push.secret"

// pushServer creates the push gateway.
func (n *Node) pushServer(st *store.Store, nc *nats.Conn) (*pushserver.Server, error) {
	secrets, err := n.pushSecrets()
	if err != nil {
		return nil, err
	}
	p := n.cfg.Push
	tcp := p.TCPAddr
	if tcp == "off" {
		tcp = ""
	}
	srv, err := pushserver.New(pushserver.Config{
		Store: st, Conn: nc, NodeName: n.cfg.Name, Secrets: secrets, TCPAddr: tcp,
		Ping: p.Ping, Pong: p.Pong, Idle: p.Idle, ConnectTimeout: p.ConnectTimeout,
		SameClient: p.SameClient, MaxFrame: p.MaxFrame, SendQueue: p.SendQueue, Rate: p.Rate, Burst: p.Burst,
		Authenticate: n.authenticate, TokenPerms: p.TokenPerms,
		Logger: n.log, Metrics: n.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("node: push: %w", err)
	}
	n.push.Store(srv)
	return srv, nil
}

// authenticate resolves a mortar credential with the security layer.
func (n *Node) authenticate(ctx context.Context, credential, addr string) (*auth.Subject, error) {
	a := n.auth.Load()
	if a == nil {
		return nil, mortar.Errorf(mortar.CodeUnavailable, "the security layer is starting")
	}
	return a.Authenticate(ctx, credential, addr)
}

// pushSecrets returns the configured secrets, or the data dir's, made on
// first use.
func (n *Node) pushSecrets() ([][]byte, error) {
	var out [][]byte
	for _, s := range n.cfg.Push.Secrets {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, []byte(s))
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if n.cfg.ClusterListen != "" || n.cfg.NATSURL != "" {
		n.log.Warn("no --push-secret: this node signs push tokens with its own secret, which the other nodes do not accept; give every node the same --push-secret")
	}
	s, err := ReadPushSecret(n.cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		s, err = writePushSecret(n.cfg.DataDir)
		if err == nil {
			n.log.Info("generated the push token secret", "file", filepath.Join(n.cfg.DataDir, PushSecretFile))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("node: push secret: %w", err)
	}
	return [][]byte{s}, nil
}

// ReadPushSecret reads the push secret a node generated in dataDir.
func ReadPushSecret(dataDir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, PushSecretFile))
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("%s is empty", filepath.Join(dataDir, PushSecretFile))
	}
	return []byte(s), nil
}

func writePushSecret(dataDir string) ([]byte, error) {
	var raw [32]byte
	rand.Read(raw[:])
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dataDir, PushSecretFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadPushSecret(dataDir)
		}
		return nil, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return []byte(s), f.Close()
}

// pushHandler serves /push/ once the gateway exists.
func (n *Node) pushHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv := n.push.Load()
		if srv == nil {
			http.Error(w, "push gateway starting", http.StatusServiceUnavailable)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	})
}

// PushTCPAddr returns the push gateway's TCP address once it listens,
// or "".
func (n *Node) PushTCPAddr() string {
	if srv := n.push.Load(); srv != nil {
		return srv.TCPAddr()
	}
	return ""
}
