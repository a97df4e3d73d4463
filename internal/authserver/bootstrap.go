package authserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// bootstrap makes a new installation usable, and is a no-op on one that
// is: a signing key, the admin role (permitted everything), the admin
// user with a generated password printed once (or Config.AdminPassword),
// and this node's local admin credential. Each step is a create, so
// nodes starting together do it once.
func (s *Server) bootstrap(ctx context.Context) error {
	if len(s.keyring.Keys()) == 0 {
		if _, err := s.addSigningKey(ctx); err != nil {
			return err
		}
	}
	now := s.cfg.Now().UTC()
	role := &roleRecord{Name: AdminRole, Permissions: []string{"*"}, Created: now, Updated: now}
	if err := s.createOnce(ctx, roleKey(AdminRole), role); err != nil {
		return fmt.Errorf("authserver: bootstrap admin role: %w", err)
	}
	if err := s.bootstrapAdmin(ctx); err != nil {
		return err
	}
	return s.localCredential(ctx)
}

// createOnce creates key unless it exists.
func (s *Server) createOnce(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.st.Auth.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return store.APIError(err)
	}
	return nil
}

func (s *Server) bootstrapAdmin(ctx context.Context) error {
	if u, err := s.getUser(ctx, AdminUser); err != nil || u != nil {
		return err
	}
	password, generated := s.cfg.AdminPassword, false
	if password == "" {
		password, generated = newPassword(), true
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("authserver: bootstrap admin: %w", err)
	}
	now := s.cfg.Now().UTC()
	b, err := json.Marshal(&userRecord{Name: AdminUser, Hash: hash, Roles: []string{AdminRole}, Created: now, Updated: now})
	if err != nil {
		return err
	}
	if _, err := s.st.Auth.Create(ctx, userKey(AdminUser), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil // another node created it first
		}
		return fmt.Errorf("authserver: bootstrap admin: %w", store.APIError(err))
	}
	s.audit.record(authwire.AuditEntry{Kind: "user.add", Principal: "node:" + s.cfg.NodeName, Target: AdminUser, Detail: "bootstrap"})
	if !generated {
		s.log.Info("created the admin user with the given password")
		return nil
	}
	msg := fmt.Sprintf("\n  mortar created the user %q with the password\n\n      %s\n\n  It is shown this once. Log in with `mortar login`, and change it with\n  `mortar user passwd %s`.\n\n", AdminUser, password, AdminUser)
	if s.cfg.Announce != nil {
		fmt.Fprint(s.cfg.Announce, msg)
	} else {
		s.log.Warn("created the admin user with a generated password, shown this once", "user", AdminUser, "password", password)
	}
	return nil
}

// localCredential makes sure this node's data dir holds a working admin
// API key for the CLI and SDK on the same machine: kept if it still
// works, replaced if it was revoked or is missing.
func (s *Server) localCredential(ctx context.Context) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	path := filepath.Join(s.cfg.DataDir, authwire.LocalCredentialFile)
	if b, err := os.ReadFile(path); err == nil {
		if _, err := s.apiKeyPrincipal(ctx, strings.TrimSpace(string(b))); err == nil {
			return nil
		}
		s.log.Info("replacing the local admin credential, which no longer works", "path", path)
	}
	key, err := s.createAPIKey(ctx, &authwire.APIKeyRequest{User: AdminUser, Name: "local admin credential of node " + s.cfg.NodeName}, "node:"+s.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("authserver: local admin credential: %w", err)
	}
	if err := writeFileAtomic(path, []byte(key.Key+"\n"), 0o600); err != nil {
		return fmt.Errorf("authserver: local admin credential: %w", err)
	}
	s.log.Info("wrote the local admin credential", "path", path)
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader never sees half of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// addSigningKey stores a new signing key; the keyring signs with the
// newest.
func (s *Server) addSigningKey(ctx context.Context) (string, error) {
	k, err := auth.GenerateSigningKey(s.cfg.Now())
	if err != nil {
		return "", err
	}
	b, err := auth.MarshalSigningKey(k)
	if err != nil {
		return "", err
	}
	if _, err := s.st.Auth.Create(ctx, signingPrefix+k.ID, b); err != nil {
		return "", fmt.Errorf("authserver: signing key: %w", store.APIError(err))
	}
	// Sign with it at once, before the watch brings it back.
	s.signingMu.Lock()
	s.keyring.SetKeys(append(s.keyring.Keys(), k))
	s.signingMu.Unlock()
	return k.ID, nil
}

// rotateSigningKeys adds a new signing key and retires the others once
// every token they signed has expired.
func (s *Server) rotateSigningKeys(ctx context.Context) (string, error) {
	old := s.keyring.Keys()
	id, err := s.addSigningKey(ctx)
	if err != nil {
		return "", err
	}
	retire := s.cfg.Now().Add(s.cfg.SessionMax + auth.LeewayDefault).UTC()
	for _, k := range old {
		if !k.Retires.IsZero() && k.Retires.Before(retire) {
			continue
		}
		_, err := updateSigningKey(ctx, s, k.ID, func(k *auth.SigningKey) { k.Retires = retire })
		if err != nil {
			return "", err
		}
	}
	return id, nil
}

func updateSigningKey(ctx context.Context, s *Server, id string, fn func(*auth.SigningKey)) (uint64, error) {
	b, rev, err := s.st.KVGet(ctx, store.AuthBucket, signingPrefix+id)
	if err != nil {
		return 0, store.APIError(err)
	}
	k, err := auth.UnmarshalSigningKey(b)
	if err != nil {
		return 0, err
	}
	fn(&k)
	if b, err = auth.MarshalSigningKey(k); err != nil {
		return 0, err
	}
	rev, err = s.st.Auth.Update(ctx, signingPrefix+id, b, rev)
	return rev, store.APIError(err)
}

// newPassword returns a generated password: crypto/rand.Text, 26
// characters of base32 (128 bits), nothing a shell or a command line would
// take for an option.
func newPassword() string { return rand.Text() }
