package main

import (
	"io"
	"strings"
	"testing"
)

// TestAccessConfig reads the access settings from the environment as the
// binary does.
func TestAccessConfig(t *testing.T) {
	env := newEnv()
	env.set("BINDERBUILD_AUTH", "jupyterhub")
	env.set("BINDERBUILD_BAN_NETWORKS", "10.0.0.0/8=cluster,2001:db8::/32=docs")
	env.set("BINDERBUILD_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
	env.set("BINDERBUILD_BANNED_SPECS", "^evil/.*,^x{1,3}/")
	env.set("BINDERBUILD_RATE_LIMIT", "10")
	env.set("BINDERBUILD_BUILD_TOKEN_SECRET", "00ff")
	env.set("JUPYTERHUB_API_URL", "http://hub:8081/hub/api")
	env.set("JUPYTERHUB_SERVICE_NAME", "binder")
	cfg, err := loadConfig(env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.AuthConfig; h.JupyterhubApiUrl != "http://hub:8081/hub/api" || strings.Join(h.RequiredScopes, ",") != "access:services!service=binder" {
		t.Errorf("hub settings = %q %q, want them from JUPYTERHUB_API_URL and JUPYTERHUB_SERVICE_NAME", h.JupyterhubApiUrl, h.RequiredScopes)
	}
	a := cfg.AccessConfig
	if len(a.BanNetworks) != 2 || a.BanNetworks[1].Label != "docs" || a.BanNetworks[1].Prefix.String() != "2001:db8::/32" {
		t.Errorf("ban networks = %v", a.BanNetworks)
	}
	if len(a.TrustedProxies) != 2 || len(a.BannedSpecs) != 2 || !a.BannedSpecs[1].MatchString("xx/y") || a.RateLimit != 10 ||
		a.RateLimitPeriod.Hours() != 1 || string(a.BuildTokenSecret) != "\x00\xff" || !a.BuildTokenCheckOrigin {
		t.Errorf("access settings = %+v", a)
	}
}

func TestInvalidAccessConfig(t *testing.T) {
	tests := []struct{ env, value, want string }{
		{"BINDERBUILD_AUTH", "ldap", `invalid BINDERBUILD_AUTH="ldap": want none, jupyterhub or tokens`},
		{"BINDERBUILD_BANNED_SPECS", "^(?!jupyterhub)", `invalid BINDERBUILD_BANNED_SPECS="^(?!jupyterhub)": pattern "^(?!jupyterhub)" uses a look-around or back-reference`},
		{"BINDERBUILD_ALLOWED_SPECS", "^(a", `invalid BINDERBUILD_ALLOWED_SPECS="^(a"`},
		{"BINDERBUILD_BAN_NETWORKS", "10.0.0.0:8=x", `invalid BINDERBUILD_BAN_NETWORKS="10.0.0.0:8=x"`},
		{"BINDERBUILD_TRUSTED_PROXIES", "proxy", `invalid BINDERBUILD_TRUSTED_PROXIES="proxy"`},
		{"BINDERBUILD_BUILD_TOKEN_SECRET", "xyz", `invalid BINDERBUILD_BUILD_TOKEN_SECRET="xyz": want a hex-encoded secret`},
		{"BINDERBUILD_RATE_LIMIT", "-1", `invalid BINDERBUILD_RATE_LIMIT=-1`},
		{"JUPYTERHUB_OAUTH_ACCESS_SCOPES", "access:services", `invalid JUPYTERHUB_OAUTH_ACCESS_SCOPES="access:services"`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			env := newEnv()
			env.set(tc.env, tc.value)
			err := run(t.Context(), []string{"serve"}, env.lookup, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("serve with %s=%q: %v, want one line containing %q", tc.env, tc.value, err, tc.want)
			}
		})
	}
	t.Run("tokens file missing", func(t *testing.T) {
		env := newEnv()
		env.set("BINDERBUILD_AUTH", "tokens")
		env.set("BINDERBUILD_AUTH_TOKENS_FILE", "/nonexistent/tokens")
		err := run(t.Context(), []string{"serve"}, env.lookup, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "BINDERBUILD_AUTH_TOKENS_FILE") {
			t.Errorf("serve with a missing tokens file: %v", err)
		}
	})
}
