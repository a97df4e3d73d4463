package node_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/internal/authserver"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The node's user on the external NATS server, the callout's auth user.
const calloutUser, calloutPassword = "mortar", "node-secret"

// startCalloutNATS starts an external NATS server (JetStream on, no
// accounts) whose auth callout names calloutUser as its auth user and a
// new account key as issuer, and returns it and the issuer's seed. With
// xkey (a curve public key) the server encrypts callout requests to it.
func startCalloutNATS(t *testing.T, xkey string) (*server.Server, string) {
	t.Helper()
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := issuer.PublicKey()
	seed, _ := issuer.Seed()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users:       []*server.User{{Username: calloutUser, Password: calloutPassword}},
		AuthCallout: &server.AuthCallout{Issuer: pub, Account: "$G", AuthUsers: []string{calloutUser}, XKey: xkey},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external nats not ready")
	}
	return ns, string(seed)
}

// TestCalloutExternalNATS: a node answers its external NATS server's
// auth callout, so connections to that server authenticate with mortar
// credentials and get the subject permissions they would get on an
// embedded node; refusals are audited.
func TestCalloutExternalNATS(t *testing.T) {
	ns, seed := startCalloutNATS(t, "")
	n := mortartest.Start(t, &mortartest.Options{NATSURL: ns.ClientURL(),
		NATSUser: calloutUser, NATSPassword: calloutPassword, CalloutSeed: seed})
	ctx := t.Context()

	// The SDK with the node's local admin credential (an API key): the API
	// and a config watch work.
	admin := n.Dial(t)
	var who authwire.WhoAmI
	if err := admin.Do(ctx, "auth.whoami", nil, &who); err != nil || who.User != "admin" {
		t.Fatalf("whoami through the callout = %+v, %v; want admin", who, err)
	}
	set := func(v string) {
		t.Helper()
		if err := admin.Do(ctx, "config.set", map[string]any{"group": "g", "key": "watched", "value": v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	set("v1")
	cfg, err := config.New(admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cfg.Watch(ctx, "g", "watched")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := w.Next(ctx); err != nil {
		t.Fatal(err)
	}
	set("v2")
	if v, err := w.Next(ctx); err != nil || string(v.Data) != "v2" {
		t.Fatalf("config watch through the callout = %+v, %v; want v2", v, err)
	}

	// What TestSecurityNATS checks on an embedded node holds here.
	checkNATSConnections(t, ns.ClientURL(), admin)

	// The refusals are in the audit log, with their reasons.
	waitFor(t, "the refusals in the audit log", func() bool {
		var audit authwire.AuditResponse
		if err := admin.Do(ctx, "auth.audit", authwire.AuditRequest{}, &audit); err != nil {
			t.Fatal(err)
		}
		var none, junk, password bool
		for _, e := range audit.Entries {
			none = none || e.Kind == "auth.fail" && e.Op == "nats.connect" && e.Detail == "no credential" && e.Addr == "127.0.0.1"
			junk = junk || e.Kind == "auth.fail" && strings.Contains(e.Detail, "unknown credential form")
			password = password || e.Kind == "login.fail" && e.Op == "nats.connect" && e.Principal == "viewer"
		}
		return none && junk && password
	})

	// A node whose user the server refuses does not start, and says why.
	bad, err := node.New(&node.Config{Name: "bad", NATSURL: ns.ClientURL(), NATSUser: calloutUser, NATSPassword: "wrong",
		AdminAddr: "off", Push: node.PushConfig{TCPAddr: "off"}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Run(ctx); err == nil || !strings.Contains(err.Error(), "auth_users") {
		t.Errorf("a node with a wrong NATS password: Run = %v, want an authorization error naming auth_users", err)
	}
	// A session token's connection ends with the token: the user JWT
	// expires then.
	var login authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "admin", Password: n.AdminPassword()}, &login); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	nc, err := nats.Connect(ns.ClientURL(), nats.Token(login.Token), nats.CustomInboxPrefix(mortar.InboxPrefix(login.Token, "")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request("$SYS.REQ.USER.INFO", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	info := &server.UserInfo{}
	if err := json.Unmarshal(m.Data, &server.ServerAPIResponse{Data: info}); err != nil {
		t.Fatal(err)
	}
	if info.UserID != "admin" || info.Account != authserver.CalloutAccount ||
		info.Expires <= authserver.SessionMaxDefault-time.Minute || info.Expires > authserver.SessionMaxDefault {
		t.Errorf("session token connection = user %q in %q expiring in %v; want admin in %s expiring with the token (%v)",
			info.UserID, info.Account, info.Expires, authserver.CalloutAccount, authserver.SessionMaxDefault)
	}
	// No connection admitted through the callout reads the callout's
	// requests, which carry credentials: not even an administrator's.
	if _, err := nc.SubscribeSync(server.AuthCalloutSubject); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("admin subscribing to %s: %v, want a permissions violation", server.AuthCalloutSubject, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("admin subscribing to %s: no permissions violation", server.AuthCalloutSubject)
	}
}

// TestCalloutXKey: with an xkey the server encrypts callout requests,
// and the node decrypts them and encrypts its answers.
func TestCalloutXKey(t *testing.T) {
	xkp, err := nkeys.CreateCurveKeys()
	if err != nil {
		t.Fatal(err)
	}
	xpub, _ := xkp.PublicKey()
	xseed, _ := xkp.Seed()
	ns, seed := startCalloutNATS(t, xpub)
	n := mortartest.Start(t, &mortartest.Options{NATSURL: ns.ClientURL(),
		NATSUser: calloutUser, NATSPassword: calloutPassword, CalloutSeed: seed, CalloutXKeySeed: string(xseed)})
	var who authwire.WhoAmI
	if err := n.Dial(t).Do(t.Context(), "auth.whoami", nil, &who); err != nil || who.User != "admin" {
		t.Fatalf("whoami through the encrypted callout = %+v, %v; want admin", who, err)
	}
	if nc, err := nats.Connect(ns.ClientURL(), nats.Token("junk")); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Errorf("connect with a junk token = %v, want an authorization violation", err)
	}
}

// TestCalloutConfigErrors: malformed or misplaced callout settings are
// refused with a clear error that never repeats a seed.
func TestCalloutConfigErrors(t *testing.T) {
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	accountPub, _ := account.PublicKey()
	user, _ := nkeys.CreateUser()
	userSeed, _ := user.Seed()
	const url = "nats://127.0.0.1:4222"
	for _, tc := range []struct {
		cfg  node.Config
		want string
	}{
		{node.Config{CalloutIssuerSeed: string(accountSeed)}, "needs an external NATS"},
		{node.Config{NATSUser: "mortar"}, "for an external NATS"},
		{node.Config{NATSURL: url, CalloutIssuerSeed: "SAjunk"}, "issuer seed: not an nkey seed"},
		{node.Config{NATSURL: url, CalloutIssuerSeed: accountPub}, "issuer seed: not an nkey seed"},
		{node.Config{NATSURL: url, CalloutIssuerSeed: string(userSeed)}, `kind "user", want an account seed`},
		{node.Config{NATSURL: url, CalloutIssuerSeed: string(accountSeed), CalloutXKeySeed: string(accountSeed)}, "xkey seed"},
		{node.Config{NATSURL: url, CalloutXKeySeed: "SXjunk"}, "no issuer seed"},
	} {
		_, err := node.New(&tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("node.New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
			continue
		}
		for _, secret := range []string{tc.cfg.CalloutIssuerSeed, tc.cfg.CalloutXKeySeed} {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("node.New error %q repeats a seed", err)
			}
		}
	}
	if _, err := node.New(&node.Config{NATSURL: url, NATSUser: "mortar", CalloutIssuerSeed: string(accountSeed)}); err != nil {
		t.Errorf("node.New with a callout = %v", err)
	}
}
