package upgrades

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// maxFileBytes bounds a file the bot reads from the deployment repository.
const maxFileBytes = 8 << 20

// committer signs the bot's commits.
var committer = object.Signature{Name: "binderbuild-upgrades", Email: "binderbuild-upgrades@users.noreply.github.com"}

// Checkout is an in-memory clone of the deployment repository's base
// branch, made by GitHub.Clone. The token goes into the git client's
// authorization header, never into a URL.
type Checkout struct {
	git  *git.Repository
	wt   *git.Worktree
	base *object.Commit
	auth transport.AuthMethod
	// repo is the GitHub "owner/name", url its clone_url, branch the
	// cloned branch.
	repo, url, branch string
}

// Clone clones the base branch ("": the default branch) of the GitHub
// repository "owner/name" from the clone_url the API gives.
func (g *GitHub) Clone(ctx context.Context, repo, base string) (*Checkout, error) {
	r, err := g.Repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	if base == "" {
		base = r.GetDefaultBranch()
	}
	co, err := clone(ctx, r.GetCloneURL(), base, g.token)
	if err != nil {
		return nil, err
	}
	co.repo = repo
	return co, nil
}

// clone clones branch of the repository at url.
func clone(ctx context.Context, url, branch, token string) (*Checkout, error) {
	var auth transport.AuthMethod
	if token != "" {
		auth = &githttp.BasicAuth{Username: "x-access-token", Password: token}
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL: url, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true,
	})
	if err != nil {
		return nil, fmt.Errorf("clone %s branch %s: %w", url, branch, err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", url, err)
	}
	base, err := repo.CommitObject(head.Hash())
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", url, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, err
	}
	return &Checkout{git: repo, wt: wt, base: base, auth: auth, url: url, branch: branch}, nil
}

// ReadFile reads a file of the base commit.
func (c *Checkout) ReadFile(name string) ([]byte, error) {
	f, err := c.base.File(path.Clean(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if f.Size > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxFileBytes>>20)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// commit makes the commit that changes one file on the base commit. It is
// deterministic (the base commit's time, a fixed committer), so that an
// unchanged bump is the same commit and re-pushing it changes nothing.
func (c *Checkout) commit(name string, data []byte, msg string) (plumbing.Hash, error) {
	if err := c.wt.Reset(&git.ResetOptions{Commit: c.base.Hash, Mode: git.HardReset}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reset to base: %w", err)
	}
	f, err := c.wt.Filesystem.OpenFile(path.Clean(name), os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return plumbing.ZeroHash, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := c.wt.Add(path.Clean(name)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("add %s: %w", name, err)
	}
	sig := committer
	sig.When = c.base.Committer.When
	h, err := c.wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit %s: %w", name, err)
	}
	return h, nil
}

// push force-pushes commit to branch of the repository at url and reports
// whether the branch moved.
func (c *Checkout) push(ctx context.Context, url string, commit plumbing.Hash, branch string) (bool, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if err := c.git.Storer.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
		return false, err
	}
	remote := git.NewRemote(c.git.Storer, &config.RemoteConfig{Name: "push", URLs: []string{url}})
	err := remote.PushContext(ctx, &git.PushOptions{
		RemoteName: "push",
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + ref + ":" + ref)},
		Auth:       c.auth,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("push branch %s: %w", branch, err)
	}
	return true, nil
}
