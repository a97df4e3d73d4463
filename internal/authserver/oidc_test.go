package authserver

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/app/", true},
		{"/app/?tab=1", true},
		{"", false},
		{"app", false},
		{"//evil.example/", false},
		{`/\evil.example`, false},
		{"/\t/evil.example", false},
		{"https://evil.example/", false},
		{"/app#x", false},
		{"/" + string(make([]byte, maxRedirectLen)), false},
	} {
		if got := localPath(tc.path); got != tc.want {
			t.Errorf("localPath(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestClaim(t *testing.T) {
	claims := map[string]any{
		"email":                     "a@example.com",
		"https://example.com/roles": []any{"ops"},
		"realm_access":              map[string]any{"roles": []any{"dev"}},
	}
	for _, tc := range []struct {
		name string
		want string
	}{
		{"email", "a@example.com"},
		{"https://example.com/roles", "[ops]"},
		{"realm_access.roles", "[dev]"},
		{"realm_access.missing", "<nil>"},
		{"email.x", "<nil>"},
		{"nothing", "<nil>"},
	} {
		if got := fmt.Sprint(claim(claims, tc.name)); got != tc.want {
			t.Errorf("claim(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestSetOIDCRoles: roles the claim granted go when it stops naming
// them; defaults and grants by hand stay.
func TestSetOIDCRoles(t *testing.T) {
	u := &userRecord{}
	u.setOIDCRoles([]string{"viewer"}, []string{"viewer", "dev"})
	if !slices.Equal(u.Roles, []string{"viewer", "dev"}) || !slices.Equal(u.OIDCRoles, []string{"dev"}) {
		t.Fatalf("first login: roles %v, oidc roles %v", u.Roles, u.OIDCRoles)
	}
	u.Roles = append(u.Roles, "ops") // granted by hand
	u.setOIDCRoles(without(slices.Clone(u.Roles), u.OIDCRoles), []string{"design"})
	if !slices.Equal(u.Roles, []string{"viewer", "ops", "design"}) || !slices.Equal(u.OIDCRoles, []string{"design"}) {
		t.Fatalf("second login: roles %v, oidc roles %v", u.Roles, u.OIDCRoles)
	}
	u.setOIDCRoles(without(slices.Clone(u.Roles), u.OIDCRoles), nil)
	if !slices.Equal(u.Roles, []string{"viewer", "ops"}) || len(u.OIDCRoles) != 0 {
		t.Fatalf("third login: roles %v, oidc roles %v", u.Roles, u.OIDCRoles)
	}
}

// TestPendingLogins: a state is good once and for oidcStateTTL; at most
// oidcMaxPending wait, expired ones making room.
func TestPendingLogins(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	o := &oidcLogin{now: func() time.Time { return now }, pending: map[string]*oidcPending{}}
	o.put("a", &oidcPending{nonce: "n", expires: now.Add(oidcStateTTL)})
	if p, ok := o.take("a"); !ok || p.nonce != "n" {
		t.Fatalf("take(a) = %v, %v", p, ok)
	}
	if _, ok := o.take("a"); ok {
		t.Fatal("a state was good twice")
	}
	o.put("b", &oidcPending{expires: now.Add(oidcStateTTL)})
	now = now.Add(oidcStateTTL)
	if _, ok := o.take("b"); ok {
		t.Fatal("an expired state was good")
	}
	for i := range oidcMaxPending {
		if !o.put(fmt.Sprint(i), &oidcPending{expires: now.Add(time.Minute)}) {
			t.Fatalf("put %d refused", i)
		}
	}
	if o.put("full", &oidcPending{expires: now.Add(time.Minute)}) {
		t.Fatal("put beyond oidcMaxPending accepted")
	}
	now = now.Add(time.Minute)
	if !o.put("later", &oidcPending{expires: now.Add(time.Minute)}) || len(o.pending) != 1 {
		t.Fatalf("put after expiry: %d pending", len(o.pending))
	}
}
