package authserver

import (
	"context"
	"crypto/subtle"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats-server/v2/server"
)

// NATSAuth authenticates the connections to the node's embedded NATS
// server (nats-server's CustomClientAuthentication, in process: the
// embedded form of the NATS auth callout). A connection presents a
// mortar credential as its token, or a user name and password; it is
// admitted with NATS subject permissions derived from its subject's
// permissions (natsPermissions), and closed when a session token it
// presented expires. The node's own connections present the internal
// credential and may do anything.
//
// It exists before the engine starts, because the engine needs it; until
// Attach gives it the security layer, only the internal credential is
// admitted.
type NATSAuth struct {
	internal string
	srv      atomic.Pointer[Server]
	timeout  time.Duration
}

// NewNATSAuth returns a NATSAuth admitting the internal credential.
func NewNATSAuth(internal string) *NATSAuth {
	return &NATSAuth{internal: internal, timeout: 10 * time.Second}
}

// Attach makes a admit what s authenticates, and lets s disconnect from
// ns (the embedded server) the connections of principals whose grants
// change or whose credentials end, so they reconnect with what they may
// do now.
func (a *NATSAuth) Attach(s *Server, ns *server.Server) {
	a.srv.Store(s)
	s.SetKick(func(targets []kickTarget) { kick(ns, targets) })
}

// A connection's NATS user name is PRINCIPAL/CREDENTIAL: which credential
// it presented (a session, an API key, a password), so that revoking one
// credential disconnects only the connections that presented it.
func sessionTag(id string) string {
	if id == "" {
		return "token"
	}
	return "s:" + id
}

func apiKeyTag(id string) string { return "k:" + id }

// kickTarget names the connections of a principal to disconnect: those
// that presented cred, or all of them when cred is empty.
type kickTarget struct{ principal, cred string }

// kick disconnects the client connections of ns that targets name.
func kick(ns *server.Server, targets []kickTarget) {
	conns, err := ns.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		return
	}
	for _, c := range conns.Conns {
		principal, cred, _ := strings.Cut(c.AuthorizedUser, "/")
		for _, t := range targets {
			if t.principal == principal && (t.cred == "" || t.cred == cred) {
				ns.DisconnectClientByID(c.Cid)
				break
			}
		}
	}
}

// nodeUser names the node's own connections: not a valid mortar user
// name, so no user's change disconnects them.
const nodeUser = "_mortar_node"

// Check implements server.Authentication.
func (a *NATSAuth) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o.Token != "" && subtle.ConstantTimeCompare([]byte(o.Token), []byte(a.internal)) == 1 {
		c.RegisterUser(&server.User{Username: nodeUser})
		return true
	}
	s := a.srv.Load()
	if s == nil {
		return false
	}
	addr := ""
	if ra := c.RemoteAddress(); ra != nil {
		addr = ra.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	u, err := s.natsLogin(ctx, o.Token, o.Username, o.Password, addr)
	if err != nil {
		return false
	}
	c.RegisterUser(&server.User{Username: u.principal + "/" + u.cred, ConnectionDeadline: u.deadline, Permissions: u.perms})
	return true
}

// natsUser is what a NATS connection's credential admits it as.
type natsUser struct {
	principal string
	// cred names the credential among the principal's (credTag), so that
	// revoking it disconnects the connections that presented it.
	cred string
	// perms are its NATS subject permissions; nil means no limits (an
	// administrator).
	perms *server.Permissions
	// deadline is when the connection must close (a session token's
	// expiry); zero means never.
	deadline time.Time
}

// natsLogin authenticates the credential a NATS connection presents, a
// token or else a user and password, for NATSAuth (the embedded engine)
// and Callout (an external one) alike. A refusal is audited with its
// reason and is errInvalid; another error means the security layer could
// not answer, and is logged.
func (s *Server) natsLogin(ctx context.Context, token, user, password, addr string) (natsUser, error) {
	var (
		sub      *auth.Subject
		deadline time.Time
		cred     string
		err      error
	)
	switch {
	case token != "":
		sub, err = s.Authenticate(ctx, token, addr)
		if err == nil {
			if cl, verr := s.keyring.VerifyCached(s.tokens, token); verr == nil {
				deadline, cred = cl.ExpiresAt, sessionTag(cl.SessionID)
			} else if id, _, perr := authwire.ParseAPIKey(token); perr == nil {
				cred = apiKeyTag(id)
			}
		}
	case user != "":
		sub, err = s.passwordSubject(ctx, user, password, addr)
		cred = "password"
	default:
		s.audit.record(authwire.AuditEntry{Kind: "auth.fail", Op: "nats.connect", Addr: addr, Detail: "no credential"})
		return natsUser{}, errInvalid
	}
	if err != nil {
		if mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
			s.log.Warn("nats connection refused: the security layer could not answer", "addr", addr, "err", err)
		}
		return natsUser{}, err
	}
	u := natsUser{principal: sub.Principal(), cred: cred, deadline: deadline}
	if !sub.IsPermitted("*") {
		u.perms = natsPermissions(s.permissionStrings(ctx, sub.Principal()), mortar.InboxPrefix(token, user))
	}
	return u, nil
}

// passwordSubject logs in over a NATS connect: throttled and audited as
// auth.login is, without a session.
func (s *Server) passwordSubject(ctx context.Context, user, password, addr string) (*auth.Subject, error) {
	now := s.cfg.Now()
	if _, ok := s.throttle.Check(user, addr, now); !ok {
		s.audit.record(authwire.AuditEntry{Kind: "login.throttled", Op: "nats.connect", Principal: user, Addr: addr})
		return nil, errInvalid
	}
	if _, err := s.authn.Authenticate(ctx, auth.UsernamePassword{Username: user, Password: password, Addr: addr}); err != nil {
		s.throttle.Failed(user, addr, now)
		s.audit.record(authwire.AuditEntry{Kind: "login.fail", Op: "nats.connect", Principal: user, Addr: addr, Detail: auth.FailureReason(err)})
		return nil, errInvalid
	}
	s.throttle.Succeeded(user, addr, now)
	return s.subject(ctx, user)
}

// natsRule maps a grant of domain:action[:instance] to NATS subjects,
// "{i}" standing for the instance as one subject token (a granted * or a
// grant without the instance part: the wildcard *).
type natsRule struct {
	domain, action string
	pub, sub       []string
}

// natsRules is the catalog of what each permission lets a connection do
// directly on NATS, besides the API (whose operations check permissions
// themselves). Tasks are coarse: any task:work or task:submit grant opens
// the task layout (its streams and buckets), because producers and
// workers use the engine directly; per-name submit permission is checked
// on task.send.
var natsRules = []natsRule{
	{domain: "registry", action: "write",
		pub: []string{registrywire.HeartbeatPrefix + "{i}.*"},
		sub: []string{registrywire.EventPrefix + "{i}.*"}},
	{domain: "registry", action: "read",
		sub: []string{registrywire.EventPrefix + "{i}.*"}},
	{domain: "config", action: "read",
		sub: []string{configwire.EventPrefix + "*.{i}.>"}},
	{domain: "auth", action: "session",
		sub: []string{authwire.SessionEventPrefix + "*"}},
	{domain: "task", action: "submit", pub: taskSubjects, sub: taskSubscriptions},
	{domain: "task", action: "work", pub: taskSubjects, sub: taskSubscriptions},
}

var (
	taskBuckets = []string{taskwire.ResultBucket, taskwire.RevokedBucket, taskwire.UniqueBucket, taskwire.ChordBucket, taskwire.RateBucket}
	taskStreams = append([]string{taskwire.Stream, taskwire.DeadStream}, kvStreams(taskBuckets)...)

	taskSubjects      = append([]string{"mortar.task.>", "$JS.API.INFO"}, jsAPISubjects(taskStreams, taskBuckets)...)
	taskSubscriptions = []string{"mortar.task.>", taskwire.MaxDeliveriesPrefix + taskwire.Stream + ".>"}
)

func kvStreams(buckets []string) []string {
	var out []string
	for _, b := range buckets {
		out = append(out, "KV_"+b)
	}
	return out
}

// jsAPISubjects are the JetStream API subjects that read and consume
// the given streams, and write the given buckets.
func jsAPISubjects(streams, buckets []string) []string {
	var out []string
	for _, st := range streams {
		out = append(out,
			"$JS.API.STREAM.INFO."+st,
			"$JS.API.STREAM.MSG.GET."+st,
			"$JS.API.STREAM.MSG.DELETE."+st,
			"$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>",
			"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+st+".>",
			"$JS.API.CONSUMER.INFO."+st+".>",
			"$JS.API.CONSUMER.DELETE."+st+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+st+".>",
			"$JS.ACK."+st+".>",
			"$JS.FC."+st+".>",
		)
	}
	for _, b := range buckets {
		out = append(out, "$KV."+b+".>")
	}
	return out
}

// natsPermissions derives a connection's NATS permissions from the
// grants perms (canonical, as Permission.String gives them): the API, its own replies, and what natsRules give each grant.
func natsPermissions(perms []string, inbox string) *server.Permissions {
	pub := []string{strings.TrimSuffix(mortarAPIPrefix, ".") + ".>"}
	subs := []string{inbox + ".>", authwire.EventSubject}
	for _, p := range perms {
		parts := strings.Split(p, ":")
		for _, r := range natsRules {
			if !grantsPart(parts, 0, r.domain) || !grantsPart(parts, 1, r.action) {
				continue
			}
			for _, inst := range instances(parts) {
				pub = appendSubjects(pub, r.pub, inst)
				subs = appendSubjects(subs, r.sub, inst)
			}
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: subs},
		// Workers answer inspect requests; services answer RPC requests
		// made over NATS.
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
	}
}

const mortarAPIPrefix = mortar.APISubjectPrefix

// permissionStrings returns principal's grants, its own and its roles',
// in canonical form.
func (s *Server) permissionStrings(ctx context.Context, principal string) []string {
	u, err := s.getUser(ctx, principal)
	if err != nil || u == nil {
		return nil
	}
	var out []string
	for _, p := range s.grants(u) {
		if pp, err := auth.ParsePermission(p); err == nil {
			out = append(out, pp.String())
		}
	}
	return out
}

// grantsPart reports whether a granted permission's i-th part covers
// want: it is missing (a shorter grant implies everything below it), or
// holds * or want among its comma-separated subparts.
func grantsPart(parts []string, i int, want string) bool {
	if i >= len(parts) {
		return true
	}
	for s := range strings.SplitSeq(parts[i], ",") {
		if s == "*" || s == want {
			return true
		}
	}
	return false
}

// instances returns the granted instances as subject tokens: "*" when the
// grant has no instance part or holds *, otherwise each subpart that is a
// valid subject token (others cannot name a subject and are skipped).
func instances(parts []string) []string {
	if len(parts) < 3 {
		return []string{"*"}
	}
	var out []string
	for s := range strings.SplitSeq(parts[2], ",") {
		if s == "*" {
			return []string{"*"}
		}
		if s != "" && !strings.ContainsAny(s, ".*> \t%") {
			out = append(out, s)
		}
	}
	return out
}

func appendSubjects(to, tmpls []string, inst string) []string {
	for _, t := range tmpls {
		s := strings.ReplaceAll(t, "{i}", inst)
		if !containsString(to, s) {
			to = append(to, s)
		}
	}
	return to
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
