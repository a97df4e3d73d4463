package authserver

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"golang.org/x/oauth2"
)

// The browser flow: OIDCLoginPath sends the browser to the provider with
// a state, a nonce and a PKCE challenge; OIDCCallbackPath takes it back,
// exchanges the code, verifies the ID token and starts a session. The
// state lives in this node's memory, single-use, for oidcStateTTL, and in
// a cookie that binds it to the browser that started the login: the
// callback must reach the node that served the login (docs/security.md).

const (
	oidcStateTTL   = 10 * time.Minute
	oidcMaxPending = 10_000 // logins in progress per node
	oidcCookie     = "mortar_oidc_state"
	oidcCookiePath = "/auth/oidc/"
	maxRedirectLen = 1024
)

// oidcPending is a browser login in progress.
type oidcPending struct {
	verifier    string // the PKCE code verifier
	nonce       string
	redirectURI string // the callback the provider was given
	then        string // a local path to send the token to; empty: the token page
	expires     time.Time
}

// OIDCHandler serves the browser login on OIDCLoginPath and
// OIDCCallbackPath; nil when OIDC login is off.
func (s *Server) OIDCHandler() http.Handler {
	if s.oidc == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+OIDCLoginPath, s.oidc.start)
	mux.HandleFunc("GET "+OIDCCallbackPath, s.oidc.callback)
	return mux
}

// start sends the browser to the provider. ?redirect=PATH asks for the
// token to be sent to a local path afterwards, in the fragment.
func (o *oidcLogin) start(w http.ResponseWriter, r *http.Request) {
	then := r.URL.Query().Get("redirect")
	if then != "" && !localPath(then) {
		o.refuse(w, r, mortar.Errorf(mortar.CodeInvalidArgument, "redirect: only a path on this server, such as /app/"),
			"login: redirect to "+truncate(then, 100)+" is not a local path")
		return
	}
	p, err := o.provider(r.Context())
	if err != nil {
		o.refuse(w, r, err, "login: "+err.Error())
		return
	}
	state := authwire.Random(24)
	pend := &oidcPending{
		verifier:    oauth2.GenerateVerifier(),
		nonce:       authwire.Random(24),
		redirectURI: o.redirectURL(r),
		then:        then,
		expires:     o.now().Add(oidcStateTTL),
	}
	if !o.put(state, pend) {
		o.refuse(w, r, mortar.Errorf(mortar.CodeResourceExhausted, "too many logins in progress; retry in a minute"), "login: too many logins in progress")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: oidcCookie, Value: state, Path: oidcCookiePath, MaxAge: int(oidcStateTTL / time.Second),
		HttpOnly: true, Secure: strings.HasPrefix(pend.redirectURI, "https:"), SameSite: http.SameSiteLaxMode,
	})
	securityHeaders(w)
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, oidc.Nonce(pend.nonce), oauth2.S256ChallengeOption(pend.verifier),
		oauth2.SetAuthURLParam("redirect_uri", pend.redirectURI)), http.StatusFound)
}

// redirectURL is the callback the provider sends the browser back to.
func (o *oidcLogin) redirectURL(r *http.Request) string {
	if o.cfg.RedirectURL != "" {
		return o.cfg.RedirectURL
	}
	return "http://" + r.Host + OIDCCallbackPath
}

// callback finishes a browser login. Every refusal is audited.
func (o *oidcLogin) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	pend, ok := o.take(state)
	if !ok {
		o.refuse(w, r, mortar.Errorf(mortar.CodeInvalidArgument, "this login is unknown, was finished already or has expired: start again"),
			"callback: state unknown, spent or expired (in a cluster the login and its callback must reach the same node)")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: oidcCookiePath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if c, err := r.Cookie(oidcCookie); err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		o.refuse(w, r, mortar.Errorf(mortar.CodeInvalidArgument, "this login was started in another browser, or its cookie was lost: start again"),
			"callback: the state cookie is missing or different")
		return
	}
	if e := q.Get("error"); e != "" {
		o.refuse(w, r, mortar.Errorf(mortar.CodeUnauthenticated, "the identity provider refused the login (%s)", truncate(e, 64)),
			"callback: provider error "+truncate(e, 64)+": "+truncate(q.Get("error_description"), 200))
		return
	}
	code := q.Get("code")
	if code == "" {
		o.refuse(w, r, mortar.Errorf(mortar.CodeInvalidArgument, "the identity provider sent no authorization code"), "callback: no code")
		return
	}
	p, err := o.provider(ctx)
	if err != nil {
		o.refuse(w, r, err, "callback: "+err.Error())
		return
	}
	tok, err := p.oauth.Exchange(oidc.ClientContext(ctx, o.client), code,
		oauth2.VerifierOption(pend.verifier), oauth2.SetAuthURLParam("redirect_uri", pend.redirectURI))
	if err != nil {
		public := mortar.Errorf(mortar.CodeUnavailable, "the identity provider cannot be reached; retry later")
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			public = mortar.Errorf(mortar.CodeUnauthenticated, "the identity provider did not accept the login: start again")
		}
		o.refuse(w, r, public, "callback: code exchange: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		o.refuse(w, r, mortar.Errorf(mortar.CodeUnauthenticated, "the identity provider sent no ID token"), "callback: no id_token in the token response")
		return
	}
	sub, err := o.s.authn.Authenticate(ctx, idToken{raw: raw, nonce: pend.nonce})
	if err != nil {
		public := err
		if errors.Is(err, auth.ErrInvalidCredentials) {
			public = errInvalid
		}
		o.refuse(w, r, public, "callback: "+auth.FailureReason(err))
		return
	}
	resp, err := o.s.startOIDCSession(ctx, sub.Principal(), r.RemoteAddr, OIDCCallbackPath)
	if err != nil {
		writePage(w, mortar.ErrorCode(err).HTTPStatus(), errorPage, mortar.ErrorMessage(err))
		return
	}
	if pend.then != "" {
		securityHeaders(w)
		http.Redirect(w, r, pend.then+"#token="+url.QueryEscape(resp.Token), http.StatusSeeOther)
		return
	}
	writePage(w, http.StatusOK, tokenPage, resp)
}

// refuse audits a failed browser login and answers with a page showing
// public's message, with its code's HTTP status; detail is for the audit
// log only.
func (o *oidcLogin) refuse(w http.ResponseWriter, r *http.Request, public error, detail string) {
	o.s.audit.record(authwire.AuditEntry{Kind: "login.fail", Addr: r.RemoteAddr, Op: r.URL.Path, Detail: oidcRealmName + ": " + detail})
	writePage(w, mortar.ErrorCode(public).HTTPStatus(), errorPage, mortar.ErrorMessage(public))
}

// put keeps a pending login under state; false when too many are
// pending (expired ones are dropped first).
func (o *oidcLogin) put(state string, p *oidcPending) bool {
	o.pendingMu.Lock()
	defer o.pendingMu.Unlock()
	if len(o.pending) >= oidcMaxPending {
		now := o.now()
		for k, v := range o.pending {
			if !now.Before(v.expires) {
				delete(o.pending, k)
			}
		}
		if len(o.pending) >= oidcMaxPending {
			return false
		}
	}
	o.pending[state] = p
	return true
}

// take removes and returns the pending login of state, if it has not
// expired: a state is good once.
func (o *oidcLogin) take(state string) (*oidcPending, bool) {
	o.pendingMu.Lock()
	p := o.pending[state]
	delete(o.pending, state)
	o.pendingMu.Unlock()
	if p == nil || !o.now().Before(p.expires) {
		return nil, false
	}
	return p, true
}

// localPath reports whether p is a path on this server: absolute, with
// no scheme, host or fragment, and nothing a browser would read as
// another host ("//evil", "/\evil", control characters it strips).
func localPath(p string) bool {
	if len(p) > maxRedirectLen || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, `\#`) {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// securityHeaders keeps what the login pages carry out of caches,
// frames and Referer headers.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

func writePage(w http.ResponseWriter, status int, t *template.Template, data any) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	t.Execute(w, data) // the status is sent; a failed write has no one to tell
}

const pageStyle = `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f3f3;padding:.75rem}</style>
`

var (
	tokenPage = template.Must(template.New("token").Parse(pageStyle + `<title>mortar: logged in</title>
<h1>Logged in as {{.User}}</h1>
<p>Your session token, good until {{.Expires.Format "2006-01-02 15:04 MST"}} (or until you log out):</p>
<pre id="token">{{.Token}}</pre>
<p>For the command line:</p>
<pre>mortar login --session {{.Token}}</pre>
<p>It stands for you: keep it secret.</p>
`))
	errorPage = template.Must(template.New("error").Parse(pageStyle + `<title>mortar: login failed</title>
<h1>Login failed</h1>
<p id="error">{{.}}</p>
<p><a href="login">Log in again</a></p>
`))
)
