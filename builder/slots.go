package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/util/retry"

	"github.com/binderbuild/binderbuild"
)

// slotPrefix prefixes the annotations of the slots Lease, one per build
// holding a slot: slot.binderbuild.org/<pod name>.
const slotPrefix = "slot.binderbuild.org/"

// claimGrace is how long a claim holds its slot before its pod is seen:
// the replica that made it creates the pod right after, so a claim this old
// without a pod belongs to a replica that died in between.
const claimGrace = 2 * time.Minute

// claim is the value of one slot annotation.
type claim struct {
	Image string    `json:"image"`
	Repo  string    `json:"repo"`
	At    time.Time `json:"at"`
}

// slots is the cluster-wide count of build slots: the annotations of one
// Lease, which every replica updates with optimistic concurrency (the
// resourceVersion precondition of Update), so that replicas admitting at
// the same moment never exceed the limit between them. A claim holds its
// slot until its pod finishes or goes; the pod informer shows that to every
// replica, so no replica polls the Lease.
type slots struct {
	leases         coordinationclient.LeaseInterface
	name           string
	limit, perRepo int
	pod            func(name string) (*corev1.Pod, bool) // from the informer's cache
	active         func() []*corev1.Pod                  // unfinished build pods, from the cache

	mu      sync.Mutex
	gone    map[string]time.Time // pods seen deleted, and when
	changed chan struct{}        // closed and replaced on every pod change
}

func newSlots(leases coordinationclient.LeaseInterface, name string, limit, perRepo int, pod func(string) (*corev1.Pod, bool), active func() []*corev1.Pod) *slots {
	return &slots{leases: leases, name: name, limit: limit, perRepo: perRepo, pod: pod, active: active,
		gone: make(map[string]time.Time), changed: make(chan struct{})}
}

// podChanged wakes the builds waiting for a slot; deleted records a pod's
// deletion, which frees its claim.
func (s *slots) podChanged(name string, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if deleted {
		s.gone[name] = now
	}
	for n, at := range s.gone {
		if now.Sub(at) > claimGrace {
			delete(s.gone, n)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *slots) wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// acquire blocks until req holds a cluster-wide slot, or another replica
// claimed one for the same image (joined: attach to its pod). told is
// called once when the build has to wait for slots held by other replicas.
func (s *slots) acquire(ctx context.Context, req binderbuild.BuildRequest, told func()) (joined bool, err error) {
	waiting := false
	for {
		wake := s.wake()
		got, joined, retryAt, err := s.tryClaim(ctx, req)
		if err != nil {
			return false, err
		}
		if got || joined {
			return joined, nil
		}
		if !waiting {
			waiting = true
			told()
		}
		if err := s.sleep(ctx, wake, retryAt); err != nil {
			return false, err
		}
	}
}

// sleep waits for a pod change, or until retryAt when it is set.
func (s *slots) sleep(ctx context.Context, wake <-chan struct{}, retryAt time.Time) error {
	var expiry <-chan time.Time
	if !retryAt.IsZero() {
		t := time.NewTimer(time.Until(retryAt))
		defer t.Stop()
		expiry = t.C
	}
	select {
	case <-wake:
	case <-expiry:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// tryClaim adds req's claim to the Lease if a slot is free. retryAt, when
// set, is when a claim without a pod expires and frees its slot.
func (s *slots) tryClaim(ctx context.Context, req binderbuild.BuildRequest) (got, joined bool, retryAt time.Time, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, joined, retryAt = false, false, time.Time{}
		lease, err := s.get(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		held, expired := s.held(lease, now)
		if c, ok := held[req.Name]; ok && c.Image == req.Image {
			joined = true
			return nil
		}
		for _, key := range expired {
			delete(lease.Annotations, key)
		}
		if s.full(held, req.RepoURL) {
			for _, c := range held {
				if c.At.IsZero() {
					continue
				}
				if at := c.At.Add(claimGrace); retryAt.IsZero() || at.Before(retryAt) {
					retryAt = at
				}
			}
			if len(expired) == 0 {
				return nil
			}
		} else {
			got = true
			value, _ := json.Marshal(claim{Image: req.Image, Repo: req.RepoURL, At: now.UTC()}) // plain struct: no error
			lease.Annotations[slotPrefix+req.Name] = string(value)
		}
		_, err = s.leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return false, false, time.Time{}, fmt.Errorf("claim a build slot in Lease %s: %w", s.name, err)
	}
	return got, joined, retryAt, nil
}

// full reports whether held leaves no slot for a build of repo.
func (s *slots) full(held map[string]claim, repo string) bool {
	if s.limit > 0 && len(held) >= s.limit {
		return true
	}
	n := 0
	for _, c := range held {
		if c.Repo == repo {
			n++
		}
	}
	return s.perRepo > 0 && n >= s.perRepo
}

// held returns the builds holding a slot, by pod name: every unfinished
// build pod of the cache (its claim's time is zero once the pod is seen)
// and every claim whose pod is not seen yet. expired are the annotations of
// claims that hold nothing any more.
func (s *slots) held(lease *coordinationv1.Lease, now time.Time) (held map[string]claim, expired []string) {
	held = make(map[string]claim)
	for _, p := range s.active() {
		held[p.Name] = claim{Image: p.Annotations[imageKey], Repo: p.Annotations[repoAnnotation]}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, value := range lease.Annotations {
		name, ok := strings.CutPrefix(key, slotPrefix)
		if !ok {
			continue
		}
		var c claim
		if json.Unmarshal([]byte(value), &c) != nil {
			expired = append(expired, key)
			continue
		}
		if _, ok := held[name]; ok {
			continue
		}
		p, seen := s.pod(name)
		goneAt, gone := s.gone[name]
		switch {
		case seen && (p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed):
			expired = append(expired, key) // finished: its slot is free
		case !seen && (gone && goneAt.After(c.At) || now.Sub(c.At) > claimGrace):
			expired = append(expired, key) // its pod went, or never came
		case !seen:
			held[name] = c
		}
	}
	return held, expired
}

// release removes the claim of the build of pod name; a claim already
// removed (by a replica that saw the pod finish) is fine.
func (s *slots) release(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ok := lease.Annotations[slotPrefix+name]; !ok {
			return nil
		}
		delete(lease.Annotations, slotPrefix+name)
		_, err = s.leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
}

// get reads the Lease, creating it when it does not exist.
func (s *slots) get(ctx context.Context) (*coordinationv1.Lease, error) {
	lease, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease, err = s.leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: s.name}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, apierrors.NewConflict(coordinationv1.Resource("leases"), s.name, err) // created meanwhile: read again
		}
	}
	if err != nil {
		return nil, err
	}
	if lease.Annotations == nil {
		lease.Annotations = make(map[string]string)
	}
	return lease, nil
}
