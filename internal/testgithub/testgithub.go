// Package testgithub is an in-process fake of the parts of GitHub's REST
// API that binderbuild upgrades uses, as documented at
// docs.github.com/rest: repositories, forks, pull requests (list, create,
// update), labels, requested reviewers, issue comments, compare, GitHub App
// installation tokens, errors (401, 403, 404, 422) and rate-limit answers
// (403/429 with retry-after or x-ratelimit-*). Repositories live on a real
// git server (internal/testgit): clone_url points there and pull request
// heads are checked against the pushed branches.
package testgithub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testgit"
)

// PR is a pull request as the fake stores it.
type PR struct {
	Number           int
	Title, Body      string
	Head             string // "owner:branch"
	Base             string
	State            string // open or closed
	Draft            bool
	Labels           []string
	Reviewers, Teams []string
	Comments         []string
	CreatedBy        string
}

// Commit is an entry of a compare answer.
type Commit struct {
	SHA, Message string
}

// Server is the fake API. Its exported maps may be set up before the code
// under test runs; use Lock/Unlock around reads while it runs.
type Server struct {
	// URL is the API root, http://127.0.0.1:<port>/.
	URL string

	mu  sync.Mutex
	git *testgit.Server
	// Tokens maps accepted tokens to user logins.
	Tokens map[string]string
	// ReadOnly tokens get 403 on every API write (they may still push, as
	// a token with contents but not pull requests permission).
	ReadOnly map[string]bool
	// Repos maps "owner/name" to its repository on the git server (same
	// name) and default branch.
	Repos map[string]string
	// Pulls are every pull request, by "owner/name".
	Pulls map[string][]*PR
	// Compares maps "owner/name base...head" to the commits between.
	Compares map[string][]Commit
	// Limited, while positive, answers that many requests with a rate-limit
	// refusal of LimitStatus and LimitHeader, counting down.
	Limited     int
	LimitStatus int
	LimitHeader http.Header
	// AppID and AppKey are a GitHub App installed on every repository
	// (installation id 1); its installation tokens are added to Tokens.
	AppID  int64
	AppKey *rsa.PublicKey
	// Requests logs "METHOD path" of every request.
	Requests []string

	next int
}

// Start starts a fake whose repositories live on git.
func Start(t testing.TB, git *testgit.Server) *Server {
	t.Helper()
	s := &Server{git: git, Tokens: map[string]string{}, ReadOnly: map[string]bool{}, Repos: map[string]string{},
		Pulls: map[string][]*PR{}, Compares: map[string][]Commit{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/"
	return s
}

// Lock and Unlock guard the exported fields while requests are served.
func (s *Server) Lock()   { s.mu.Lock() }
func (s *Server) Unlock() { s.mu.Unlock() }

// CanPush reports whether token may push: a known token. Give it to
// testgit.Options.PushAuth.
func (s *Server) CanPush(_, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.Tokens[token]
	return ok
}

// AddRepo registers "owner/name", whose git repository "owner/name" must
// exist on the git server, with its default branch.
func (s *Server) AddRepo(full, defaultBranch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Repos[full] = defaultBranch
}

// PullsOf returns copies of the pull requests of repo, oldest first.
func (s *Server) PullsOf(repo string) []PR {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PR
	for _, p := range s.Pulls[repo] {
		cp := *p
		cp.Labels = slices.Clone(p.Labels)
		cp.Comments = slices.Clone(p.Comments)
		out = append(out, cp)
	}
	return out
}

// Close closes pull request n of repo, as a person would in the web page.
func (s *Server) Close(repo string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.Pulls[repo] {
		if p.Number == n {
			p.State = "closed"
		}
	}
}

type apiError struct {
	status int
	msg    string
	errs   []map[string]string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.Method+" "+r.URL.Path)
	if s.Limited > 0 {
		s.Limited--
		for k, v := range s.LimitHeader {
			w.Header()[k] = v
		}
		writeJSON(w, s.LimitStatus, map[string]any{"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/rate-limit"})
		return
	}
	v, aerr := s.route(r)
	if aerr != nil {
		body := map[string]any{"message": aerr.msg, "documentation_url": "https://docs.github.com/rest"}
		if aerr.errs != nil {
			body["errors"] = aerr.errs
		}
		writeJSON(w, aerr.status, body)
		return
	}
	status := http.StatusOK
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/forks"):
		status = http.StatusAccepted
	case r.Method == http.MethodPost:
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// route serves one request; the caller holds the lock.
func (s *Server) route(r *http.Request) (any, *apiError) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens" && r.Method == http.MethodPost {
		return s.installationToken(r)
	}
	if len(parts) < 3 || parts[0] != "repos" {
		return nil, &apiError{status: 404, msg: "Not Found"}
	}
	repo := parts[1] + "/" + parts[2]
	if len(parts) == 4 && parts[3] == "installation" && r.Method == http.MethodGet {
		if err := s.checkJWT(r); err != nil {
			return nil, err
		}
		return map[string]any{"id": 1, "app_id": s.AppID}, nil
	}
	user, aerr := s.user(r)
	if aerr != nil {
		return nil, aerr
	}
	if _, ok := s.Repos[repo]; !ok {
		return nil, &apiError{status: 404, msg: "Not Found"}
	}
	if r.Method != http.MethodGet && s.ReadOnly[bearer(r)] {
		return nil, &apiError{status: 403, msg: "Resource not accessible by personal access token"}
	}
	rest := parts[3:]
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		return s.repoJSON(repo), nil
	case len(rest) == 1 && rest[0] == "forks" && r.Method == http.MethodPost:
		return s.fork(repo, user)
	case len(rest) == 1 && rest[0] == "pulls" && r.Method == http.MethodGet:
		return s.listPulls(repo, r), nil
	case len(rest) == 1 && rest[0] == "pulls" && r.Method == http.MethodPost:
		return s.createPull(repo, user, r)
	case len(rest) == 2 && rest[0] == "pulls" && r.Method == http.MethodPatch:
		return s.editPull(repo, rest[1], r)
	case len(rest) == 3 && rest[0] == "pulls" && rest[2] == "requested_reviewers" && r.Method == http.MethodPost:
		return s.requestReviewers(repo, rest[1], r)
	case len(rest) == 3 && rest[0] == "issues" && rest[2] == "labels" && r.Method == http.MethodPost:
		return s.addLabels(repo, rest[1], r)
	case len(rest) == 3 && rest[0] == "issues" && rest[2] == "comments" && r.Method == http.MethodPost:
		return s.comment(repo, rest[1], r)
	case len(rest) == 2 && rest[0] == "compare" && r.Method == http.MethodGet:
		return s.compare(repo, rest[1])
	}
	return nil, &apiError{status: 404, msg: "Not Found"}
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(a, "Bearer "); ok {
		return t
	}
	t, _ := strings.CutPrefix(a, "token ")
	return t
}

func (s *Server) user(r *http.Request) (string, *apiError) {
	login, ok := s.Tokens[bearer(r)]
	if !ok {
		return "", &apiError{status: 401, msg: "Bad credentials"}
	}
	return login, nil
}

func (s *Server) repoJSON(repo string) map[string]any {
	owner, name, _ := strings.Cut(repo, "/")
	return map[string]any{
		"name": name, "full_name": repo, "owner": map[string]any{"login": owner},
		"default_branch": s.Repos[repo], "clone_url": s.git.URL + "/" + repo + ".git",
		"html_url": strings.TrimSuffix(s.URL, "/") + "/" + repo,
	}
}

// fork makes user's fork: a bare clone on the git server, pushable.
func (s *Server) fork(repo, user string) (any, *apiError) {
	_, name, _ := strings.Cut(repo, "/")
	fork := user + "/" + name
	if _, ok := s.Repos[fork]; !ok {
		if _, err := s.git.Output(repo, "clone", "-q", "--bare", ".", s.git.Dir(fork)); err != nil {
			return nil, &apiError{status: 500, msg: err.Error()}
		}
		if _, err := s.git.Output(fork, "config", "http.receivepack", "true"); err != nil {
			return nil, &apiError{status: 500, msg: err.Error()}
		}
		s.Repos[fork] = s.Repos[repo]
	}
	v := s.repoJSON(fork)
	v["fork"] = true
	return v, nil
}

func (s *Server) prJSON(repo string, p *PR) map[string]any {
	labels := []map[string]any{}
	for _, l := range p.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	reviewers := []map[string]any{}
	for _, l := range p.Reviewers {
		reviewers = append(reviewers, map[string]any{"login": l})
	}
	owner, branch, _ := strings.Cut(p.Head, ":")
	return map[string]any{
		"number": p.Number, "title": p.Title, "body": p.Body, "state": p.State, "draft": p.Draft,
		"html_url": strings.TrimSuffix(s.URL, "/") + "/" + repo + "/pull/" + strconv.Itoa(p.Number),
		"head":     map[string]any{"label": p.Head, "ref": branch, "user": map[string]any{"login": owner}},
		"base":     map[string]any{"ref": p.Base},
		"labels":   labels, "requested_reviewers": reviewers, "merged": false,
	}
}

func (s *Server) listPulls(repo string, r *http.Request) []map[string]any {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	out := []map[string]any{}
	prs := s.Pulls[repo]
	for i := len(prs) - 1; i >= 0; i-- { // created, descending
		p := prs[i]
		if (state != "all" && p.State != state) || (q.Get("head") != "" && q.Get("head") != p.Head) || (q.Get("base") != "" && q.Get("base") != p.Base) {
			continue
		}
		out = append(out, s.prJSON(repo, p))
	}
	return out
}

func (s *Server) createPull(repo, user string, r *http.Request) (any, *apiError) {
	var in struct {
		Title, Head, Base, Body string
		Draft                   bool
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, &apiError{status: 400, msg: "Problems parsing JSON"}
	}
	owner, branch, ok := strings.Cut(in.Head, ":")
	if !ok {
		owner, branch = strings.Split(repo, "/")[0], in.Head
	}
	_, name, _ := strings.Cut(repo, "/")
	headRepo := owner + "/" + name
	invalid := &apiError{status: 422, msg: "Validation Failed", errs: []map[string]string{{"resource": "PullRequest", "field": "head", "code": "invalid"}}}
	if _, ok := s.Repos[headRepo]; !ok {
		return nil, invalid
	}
	if _, err := s.git.Output(headRepo, "rev-parse", "--verify", "refs/heads/"+branch); err != nil {
		return nil, invalid
	}
	for _, p := range s.Pulls[repo] {
		if p.State == "open" && p.Head == owner+":"+branch {
			return nil, &apiError{status: 422, msg: "Validation Failed", errs: []map[string]string{{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + p.Head + "."}}}
		}
	}
	s.next++
	p := &PR{Number: s.next, Title: in.Title, Body: in.Body, Head: owner + ":" + branch, Base: in.Base, State: "open", Draft: in.Draft, CreatedBy: user}
	s.Pulls[repo] = append(s.Pulls[repo], p)
	return s.prJSON(repo, p), nil
}

func (s *Server) pull(repo, num string) (*PR, *apiError) {
	n, _ := strconv.Atoi(num)
	for _, p := range s.Pulls[repo] {
		if p.Number == n {
			return p, nil
		}
	}
	return nil, &apiError{status: 404, msg: "Not Found"}
}

func (s *Server) editPull(repo, num string, r *http.Request) (any, *apiError) {
	p, aerr := s.pull(repo, num)
	if aerr != nil {
		return nil, aerr
	}
	var in struct{ Title, Body, State *string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, &apiError{status: 400, msg: "Problems parsing JSON"}
	}
	if in.Title != nil {
		p.Title = *in.Title
	}
	if in.Body != nil {
		p.Body = *in.Body
	}
	if in.State != nil {
		p.State = *in.State
	}
	return s.prJSON(repo, p), nil
}

func (s *Server) requestReviewers(repo, num string, r *http.Request) (any, *apiError) {
	p, aerr := s.pull(repo, num)
	if aerr != nil {
		return nil, aerr
	}
	var in struct {
		Reviewers     []string `json:"reviewers"`
		TeamReviewers []string `json:"team_reviewers"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, &apiError{status: 400, msg: "Problems parsing JSON"}
	}
	p.Reviewers = append(p.Reviewers, in.Reviewers...)
	p.Teams = append(p.Teams, in.TeamReviewers...)
	return s.prJSON(repo, p), nil
}

func (s *Server) addLabels(repo, num string, r *http.Request) (any, *apiError) {
	p, aerr := s.pull(repo, num)
	if aerr != nil {
		return nil, aerr
	}
	var labels []string
	if err := json.NewDecoder(r.Body).Decode(&labels); err != nil {
		return nil, &apiError{status: 400, msg: "Problems parsing JSON"}
	}
	p.Labels = append(p.Labels, labels...)
	out := []map[string]any{}
	for _, l := range p.Labels {
		out = append(out, map[string]any{"name": l})
	}
	return out, nil
}

func (s *Server) comment(repo, num string, r *http.Request) (any, *apiError) {
	p, aerr := s.pull(repo, num)
	if aerr != nil {
		return nil, aerr
	}
	var in struct{ Body string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, &apiError{status: 400, msg: "Problems parsing JSON"}
	}
	p.Comments = append(p.Comments, in.Body)
	return map[string]any{"id": len(p.Comments), "body": in.Body}, nil
}

func (s *Server) compare(repo, spec string) (any, *apiError) {
	commits, ok := s.Compares[repo+" "+spec]
	if !ok {
		return nil, &apiError{status: 404, msg: "Not Found"}
	}
	out := []map[string]any{}
	for _, c := range commits {
		out = append(out, map[string]any{"sha": c.SHA, "commit": map[string]any{"message": c.Message}})
	}
	if len(out) > 250 { // GitHub lists at most 250 commits
		out = out[:250]
	}
	return map[string]any{
		"html_url":      strings.TrimSuffix(s.URL, "/") + "/" + repo + "/compare/" + spec,
		"total_commits": len(commits), "status": "ahead", "ahead_by": len(commits), "commits": out,
	}, nil
}

// checkJWT verifies the App's RS256 token.
func (s *Server) checkJWT(r *http.Request) *apiError {
	bad := &apiError{status: 401, msg: "A JSON web token could not be decoded"}
	if s.AppKey == nil {
		return bad
	}
	parts := strings.Split(bearer(r), ".")
	if len(parts) != 3 {
		return bad
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return bad
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.AppKey, crypto.SHA256, sum[:], sig) != nil {
		return bad
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss      string
		Iat, Exp int64
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Iss != strconv.FormatInt(s.AppID, 10) {
		return bad
	}
	now := time.Now().Unix()
	if claims.Iat > now || claims.Exp < now || claims.Exp-claims.Iat > 600 {
		return &apiError{status: 401, msg: "'Expiration time' claim ('exp') is too far in the future"}
	}
	return nil
}

func (s *Server) installationToken(r *http.Request) (any, *apiError) {
	if err := s.checkJWT(r); err != nil {
		return nil, err
	}
	tok := fmt.Sprintf("ghs_installation%d", len(s.Tokens)+1)
	s.Tokens[tok] = "binderbuild-app[bot]"
	return map[string]any{"token": tok, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil
}

// GenerateAppKey returns a GitHub App private key as PEM (PKCS#1) and its
// public half for Server.AppKey.
func GenerateAppKey(t testing.TB) ([]byte, *rsa.PublicKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), &key.PublicKey
}
