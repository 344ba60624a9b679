package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/binderbuild/binderbuild"
)

// lsRemote returns what `git ls-remote -- <repoURL> <ref>` prints first:
// the object id of HEAD or of the first ref, in sorted order, whose name ends
// with "/<ref>" (git matches the pattern "*/<ref>" against "/<name>"; refs
// passed checkRef, so <ref> has no glob characters). For an annotated tag
// that is the tag object, as with git.
func (g *Git) lsRemote(ctx context.Context, repoURL, ref string) (string, error) {
	u, err := url.Parse(repoURL)
	if err != nil {
		return "", fmt.Errorf("parse git url: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()

	var refs *packp.AdvRefs
	switch u.Scheme {
	case "http", "https":
		refs, err = g.advertisedHTTP(ctx, repoURL)
	case "git":
		refs, err = g.advertisedGit(ctx, u)
	default:
		return "", userErrorf("refs of %s URLs cannot be resolved, use a full 40-character commit sha as ref", u.Scheme)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		outcome, err := g.listError(u, err)
		g.metrics.upstreamRequest(upstreamGit, outcome)
		return "", err
	}
	sha, ok := matchRef(refs, ref)
	if !ok {
		g.metrics.upstreamRequest(upstreamGit, outcomeNotFound)
		return "", fmt.Errorf("git ls-remote %s %s: %w", repoURL, ref, binderbuild.ErrRefNotFound)
	}
	g.metrics.upstreamRequest(upstreamGit, outcomeOK)
	return sha, nil
}

// matchRef picks the first line git ls-remote would print for ref: HEAD
// first, then the refs sorted by name. Peeled tag lines ("^{}") never match
// a valid ref name, so they are ignored.
func matchRef(refs *packp.AdvRefs, ref string) (string, bool) {
	suffix := "/" + ref
	if refs.Head != nil && ref == "HEAD" {
		return refs.Head.String(), true
	}
	var best string
	for name := range refs.References {
		if strings.HasSuffix("/"+name, suffix) && (best == "" || name < best) {
			best = name
		}
	}
	if best == "" {
		return "", false
	}
	return refs.References[best].String(), true
}

// advertisedHTTP lists the refs of a smart-HTTP repository.
func (g *Git) advertisedHTTP(ctx context.Context, repoURL string) (*packp.AdvRefs, error) {
	ep, err := transport.NewEndpoint(repoURL)
	if err != nil {
		return nil, err
	}
	sess, err := g.http.NewUploadPackSession(ep, nil)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return sess.AdvertisedReferencesContext(ctx)
}

// advertisedGit lists the refs of a git:// repository: it sends the
// git-upload-pack request, reads the advertisement and ends the conversation
// with a flush-pkt, over a connection made by guard.
func (g *Git) advertisedGit(ctx context.Context, u *url.URL) (*packp.AdvRefs, error) {
	if u.Path == "" || u.Path == "/" {
		return nil, transport.ErrRepositoryNotFound
	}
	port := u.Port()
	if port == "" {
		port = defaultPorts["git"]
	}
	conn, err := g.guard.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return nil, err
		}
	}

	req := packp.GitProtoRequest{RequestCommand: transport.UploadPackServiceName, Pathname: u.Path, Host: u.Host}
	if err := req.Encode(conn); err != nil {
		return nil, err
	}
	refs := packp.NewAdvRefs()
	if err := refs.Decode(&limitedReader{r: conn, n: g.maxRefsBytes}); err != nil {
		var errLine *pktline.ErrorLine
		if errors.As(err, &errLine) && missingRepoMessage(errLine.Text) {
			return nil, fmt.Errorf("%w: %s", transport.ErrRepositoryNotFound, errLine.Text)
		}
		return nil, err
	}
	if refs.Head == nil && len(refs.References) == 0 {
		return nil, transport.ErrEmptyRemoteRepository
	}
	// Best effort: the server ends the conversation either way.
	_ = pktline.NewEncoder(conn).Flush()
	return refs, nil
}

// missingRepoMessage reports whether the text of a git protocol ERR line
// says the repository does not exist or is not exported. The protocol has
// no codes, so this matches git daemon's and common hosts' wording.
func missingRepoMessage(text string) bool {
	text = strings.ToLower(text)
	return slices.ContainsFunc([]string{"not exported", "no such repository", "not found", "does not exist", "access denied"},
		func(s string) bool { return strings.Contains(text, s) })
}

// listError turns a failure to list refs into the error Resolve returns,
// with the upstream-request outcome to count. The error's text is safe to
// show: it names only the user's own URL.
func (g *Git) listError(u *url.URL, err error) (string, error) {
	g.log.Info("git ls-remote failed", "url", u.String(), "error", err)
	var refused *refusedHostError
	var errLine *pktline.ErrorLine
	var unexpected *plumbing.UnexpectedError
	var opErr *net.OpError
	switch {
	case errors.As(err, &refused):
		return outcomeError, refused
	case errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, packp.ErrEmptyAdvRefs):
		// Missing, private and empty repositories have no refs to resolve.
		return outcomeNotFound, fmt.Errorf("git ls-remote %s: %w (%w)", u, binderbuild.ErrRefNotFound, err)
	case errors.Is(err, errTooLarge):
		return outcomeError, userErrorf("the list of refs of %s is larger than %d bytes", u, g.maxRefsBytes)
	case errors.As(err, &errLine):
		text := errLine.Text
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return outcomeError, &userError{msg: fmt.Sprintf("the git server of %s answered with an error: %q", u, text), err: err}
	case errors.As(err, &unexpected):
		var status *githttp.Err
		if errors.As(unexpected.Err, &status) {
			return outcomeError, userErrorf("unexpected response from %s (HTTP %d)", u, status.StatusCode())
		}
	case errors.Is(err, packp.ErrEmptyInput):
		return outcomeError, &userError{msg: fmt.Sprintf("could not contact %s: the server closed the connection without answering", u.Host), err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &opErr),
		errors.Is(err, io.ErrUnexpectedEOF):
		return outcomeError, &userError{msg: fmt.Sprintf("could not contact %s: %s", u.Host, netReason(err)), err: err}
	}
	return outcomeError, &userError{msg: fmt.Sprintf("could not list the refs of %s: the server did not answer like a git server", u), err: err}
}

// limitTransport caps every response body at max bytes (see limitedReader).
type limitTransport struct {
	next http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: &limitedReader{r: resp.Body, n: t.max}, Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
