package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/rawquery"
)

// CanaryConfig enables the canary route, GET
// {base_url}canary/{provider}/{spec}?build_image=<image>: a build of spec
// with another build image, for `binderbuild upgrades --verify`. Only
// requests bearing CanaryToken may use it; ordinary clients cannot choose
// the build image anywhere.
type CanaryConfig struct {
	CanaryToken string `split_words:"true" desc:"admin token (secret) of the canary route {base_url}canary/<provider>/<spec>?build_image=<image>, which builds with another build image for binderbuild upgrades --verify; empty: no such route"`
}

// maxImageLen bounds a build_image value (a registry host, a path and a tag).
const maxImageLen = 512

// handleCanary builds spec with the build_image of the query, always
// (never a cache hit), under a name and image tag of its own: the tag is
// "<ref>-canary-<hash of the build image>", so canary images never answer
// normal requests and never collide with normal builds.
func (s *Server) handleCanary(w http.ResponseWriter, r *http.Request) {
	st := startStream(w)
	if err := s.banned(r); err != nil {
		s.fail(st, r, err)
		return
	}
	if r.Method != http.MethodGet {
		s.fail(st, r, userError(http.StatusMethodNotAllowed, "Method Not Allowed"))
		return
	}
	if !acceptsEventStream(r.Header.Values("Accept")) {
		s.fail(st, r, userError(http.StatusBadRequest, "Missing Accept header: text/event-stream"))
		return
	}
	if !s.canaryAuthorized(r) {
		s.fail(st, r, userError(http.StatusForbidden, "Forbidden"))
		return
	}
	buildImage := rawquery.Get(r.URL.RawQuery, "build_image")
	if buildImage == "" || len(buildImage) > maxImageLen || strings.ContainsFunc(buildImage, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		s.fail(st, r, userError(http.StatusBadRequest, "build_image must name an image, e.g. quay.io/jupyterhub/repo2docker:2024.07.0"))
		return
	}
	prefix := chi.URLParam(r, "provider")
	provider, ok := s.providers[prefix]
	if !ok {
		s.fail(st, r, expected("No provider found for prefix "+prefix))
		return
	}
	spec := strings.TrimRight(strings.TrimPrefix(r.URL.EscapedPath(), s.cfg.BaseURL+"canary/"+prefix+"/"), "/")
	repo, err := provider.Parse(spec)
	if err != nil {
		s.fail(st, r, expected(err.Error()))
		return
	}
	resolved, err := s.resolve(r.Context(), st, provider, repo)
	if err != nil {
		s.fail(st, r, err)
		return
	}
	sum := sha256.Sum256([]byte(buildImage))
	mark := "canary-" + hex.EncodeToString(sum[:6])
	image := binderbuild.ImageName(s.cfg.ImagePrefix, resolved.BuildSlug, resolved.ResolvedRef+"-"+mark)
	req := buildRequest(resolved, binderbuild.BuildName(resolved.BuildSlug+"-"+mark, resolved.ResolvedRef), image)
	req.BuildImage = buildImage
	s.buildAndFollow(r, st, req, nil)
}

// canaryAuthorized reports whether r bears the canary token.
func (s *Server) canaryAuthorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.cfg.CanaryToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.CanaryToken)) == 1
}
