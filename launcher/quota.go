package launcher

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild"
)

// QuotaConfig holds the launch quotas. The tags document the environment
// variables cmd reads them from (prefix BINDERBUILD_).
type QuotaConfig struct {
	PodQuota           int           `split_words:"true" default:"-1" desc:"most user servers running at once; a launch beyond is refused with 'Too many users on this BinderHub!' (-1: no quota, 0: no launches; upstream pod_quota)"`
	PerRepoQuota       int           `split_words:"true" default:"0" desc:"most user servers running one repository's image at once (0: no quota; upstream per_repo_quota)"`
	PerRepoQuotaHigher int           `split_words:"true" default:"0" desc:"per-repository quota of specs matching BINDERBUILD_HIGH_QUOTA_SPECS (upstream per_repo_quota_higher)"`
	QuotaNamespace     string        `split_words:"true" desc:"namespace of JupyterHub's user pods (default: the build namespace)"`
	QuotaCacheTTL      time.Duration `split_words:"true" default:"2s" desc:"how long one count of the user pods is reused; launches admitted meanwhile are added to it"`
}

// userPods selects JupyterHub's user server pods, as upstream.
const userPods = "app=jupyterhub,component=singleuser-server"

// Quota counts user server pods, as upstream's KubernetesLaunchQuota: all
// of them for PodQuota, those with a container running the image (tag
// ignored) for the per-repository quota. One pod list is reused for
// QuotaCacheTTL, so that a burst of launches costs one request; launches
// admitted meanwhile are counted in, so a burst cannot overshoot.
type Quota struct {
	cfg   QuotaConfig
	kube  kubernetes.Interface
	now   func() time.Time
	log   *slog.Logger
	group singleflight.Group

	mu    sync.Mutex
	count *podCount // nil: none yet
}

// podCount is one count of the user pods.
type podCount struct {
	at    time.Time
	total int
	// byImage counts the pods running each image, tag removed.
	byImage map[string]int
}

// NewQuota returns the quota of cfg counting pods with kube. now may be nil
// (time.Now).
func NewQuota(cfg QuotaConfig, kube kubernetes.Interface, now func() time.Time, log *slog.Logger) *Quota {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Quota{cfg: cfg, kube: kube, now: now, log: log}
}

// Check returns a *binderbuild.QuotaExceeded with upstream's message when
// one more server running image would exceed a quota, and otherwise counts
// that server in until the next list.
func (q *Quota) Check(ctx context.Context, image, repoURL string, high bool) error {
	return q.check(ctx, image, repoURL, high, true)
}

// Peek is Check without counting the server in: the check before a build,
// whose launch is checked (and counted) when the image is there. Counting
// both would count one server twice when the build ends within
// QuotaCacheTTL.
func (q *Quota) Peek(ctx context.Context, image, repoURL string, high bool) error {
	return q.check(ctx, image, repoURL, high, false)
}

func (q *Quota) check(ctx context.Context, image, repoURL string, high, admit bool) error {
	repoQuota := q.cfg.PerRepoQuota
	if high {
		repoQuota = q.cfg.PerRepoQuotaHigher
	}
	if q.cfg.PodQuota < 0 && repoQuota <= 0 {
		return nil // no quota: no request
	}
	if err := q.refresh(ctx); err != nil {
		return err
	}
	noTag := imageWithoutTag(image)
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.count
	if q.cfg.PodQuota >= 0 && c.total >= q.cfg.PodQuota {
		q.log.ErrorContext(ctx, "BinderHub is full", "used", c.total, "quota", q.cfg.PodQuota)
		return &binderbuild.QuotaExceeded{Status: "pod_quota", Message: "Too many users on this BinderHub! Try again soon.",
			Quota: q.cfg.PodQuota, Used: c.total}
	}
	if matching := c.byImage[noTag]; repoQuota > 0 && matching >= repoQuota {
		q.log.ErrorContext(ctx, "repository has exceeded quota", "repo", repoURL, "used", matching, "quota", repoQuota, "total", c.total)
		return &binderbuild.QuotaExceeded{Status: "repo_quota", Message: fmt.Sprintf("Too many users running %s! Try again soon.", repoURL),
			Quota: repoQuota, Used: matching}
	}
	if admit {
		c.total++
		c.byImage[noTag]++
	}
	return nil
}

// refresh lists the user pods unless the last count is recent enough.
// Concurrent callers share one list.
func (q *Quota) refresh(ctx context.Context) error {
	q.mu.Lock()
	fresh := q.count != nil && q.now().Sub(q.count.at) < q.cfg.QuotaCacheTTL
	q.mu.Unlock()
	if fresh {
		return nil
	}
	_, err, _ := q.group.Do("list", func() (any, error) {
		c, err := q.list(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		q.count = c
		q.mu.Unlock()
		return nil, nil
	})
	return err
}

// listTimeout bounds the pod list, shared by every caller waiting for it.
const listTimeout = 30 * time.Second

func (q *Quota) list(ctx context.Context) (*podCount, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	at := q.now()
	pods, err := q.kube.CoreV1().Pods(q.cfg.QuotaNamespace).List(ctx, metav1.ListOptions{LabelSelector: userPods})
	if err != nil {
		return nil, fmt.Errorf("list user pods in %q: %w", q.cfg.QuotaNamespace, err)
	}
	c := &podCount{at: at, total: len(pods.Items), byImage: make(map[string]int)}
	for _, p := range pods.Items {
		seen := map[string]bool{}
		for _, ct := range p.Spec.Containers {
			img := imageWithoutTag(ct.Image)
			if !seen[img] {
				seen[img] = true
				c.byImage[img]++
			}
		}
	}
	return c, nil
}

// imageWithoutTag cuts at the last ":", as upstream.
func imageWithoutTag(image string) string {
	if i := strings.LastIndex(image, ":"); i >= 0 {
		return image[:i]
	}
	return image
}
