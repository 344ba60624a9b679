package builder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/go-logr/logr"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// KubeConfig configures the Kubernetes executor.
type KubeConfig struct {
	PodConfig
	ConcurrentBuildLimit int           `split_words:"true" default:"32" desc:"most build pods running at once in the namespace, across replicas; more requests wait in a queue"`
	PerRepoBuildLimit    int           `split_words:"true" default:"0" desc:"most build pods of one repository at once (0: no limit)"`
	BuildMaxAge          time.Duration `split_words:"true" default:"4h" desc:"the cleanup loop deletes build pods older than this (0: never)"`
	// CleanupInterval is how often finished and over-age pods are deleted.
	CleanupInterval time.Duration `ignored:"true"`
	// Identity names this replica in the cleanup Lease; default: the host
	// name and a random suffix.
	Identity string `ignored:"true"`
}

// Kube runs builds as repo2docker pods. One informer watches every build pod
// of the namespace, whatever the number of builds and clients; each build
// follows its pod's log once. Replicas share the build limit through a
// Lease (slots) and elect one of them to run the cleanup.
type Kube struct {
	cfg    KubeConfig
	client kubernetes.Interface
	log    *slog.Logger
	// pods lists build pods from the informer's cache: admission, state
	// and cleanup read it instead of calling the API server.
	pods     listers.PodNamespaceLister
	informer cache.SharedIndexInformer
	queue    *queue
	slots    *slots
	// listErr is the informer's last list or watch error, for the start-up
	// message when the cache never syncs.
	listErr atomic.Pointer[error]

	mu       sync.Mutex
	watchers map[string]chan struct{} // pod name → poked on every change
}

var _ Executor = (*Kube)(nil)

// NewKube returns the executor; call Start before Run.
func NewKube(client kubernetes.Interface, cfg KubeConfig, log *slog.Logger) (*Kube, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BuildNamespace == "" {
		cfg.BuildNamespace = "default"
	}
	if cfg.CleanupInterval <= 0 {
		cfg.CleanupInterval = time.Minute
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		cfg.Identity = host + "-" + rand.Text()[:8]
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(cfg.BuildNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.selector() }))
	podInformer := factory.Core().V1().Pods()
	k := &Kube{
		cfg:      cfg,
		client:   client,
		log:      log,
		informer: podInformer.Informer(),
		pods:     podInformer.Lister().Pods(cfg.BuildNamespace),
		watchers: make(map[string]chan struct{}),
	}
	k.queue = newQueue(cfg.ConcurrentBuildLimit, cfg.PerRepoBuildLimit, k.activePods)
	k.queue.where = "in this replica's queue"
	k.slots = newSlots(client.CoordinationV1().Leases(cfg.BuildNamespace), cfg.leaseName("slots"),
		cfg.ConcurrentBuildLimit, cfg.PerRepoBuildLimit, k.cachedPod, k.activePods)
	return k, nil
}

// leaseName is the name of this installation's Lease for purpose.
func (c KubeConfig) leaseName(purpose string) string {
	if c.Release == "" {
		return "binderbuild-" + purpose
	}
	return c.Release + "-binderbuild-" + purpose
}

// Start checks the service account's permissions, runs the informer and the
// cleanup election until ctx ends; it returns once the informer's cache has
// synced, or with an error naming what is missing when a permission is
// denied or syncCtx ends first.
func (k *Kube) Start(ctx, syncCtx context.Context) error {
	if err := k.checkAccess(syncCtx); err != nil {
		return err
	}
	if _, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    k.changed,
		UpdateFunc: func(_, obj any) { k.changed(obj) },
		DeleteFunc: k.deleted,
	}); err != nil {
		return err
	}
	if err := k.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		k.listErr.Store(&err)
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}); err != nil {
		return err
	}
	go k.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(syncCtx.Done(), k.informer.HasSynced) {
		if last := k.listErr.Load(); last != nil {
			return fmt.Errorf("list build pods in namespace %s: %w", k.cfg.BuildNamespace, *last)
		}
		return fmt.Errorf("list build pods in namespace %s: the Kubernetes API server did not answer: %w", k.cfg.BuildNamespace, syncCtx.Err())
	}
	go k.electCleaner(ctx)
	return nil
}

// deleted records a pod's deletion (its slot is free), then is changed.
func (k *Kube) deleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		k.slots.podChanged(pod.Name, true)
	}
	k.changed(obj)
}

// changed pokes the build watching the pod and re-runs admission.
func (k *Kube) changed(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		k.mu.Lock()
		if ch, ok := k.watchers[pod.Name]; ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		k.mu.Unlock()
		k.slots.podChanged(pod.Name, false)
	}
	k.queue.admit()
}

// cachedPod returns the build pod named name from the informer's cache.
func (k *Kube) cachedPod(name string) (*corev1.Pod, bool) {
	p, err := k.pods.Get(name)
	return p, err == nil
}

func (k *Kube) subscribe(name string) chan struct{} {
	ch := make(chan struct{}, 1)
	k.mu.Lock()
	k.watchers[name] = ch
	k.mu.Unlock()
	return ch
}

// watched reports whether a build of this replica follows the pod.
func (k *Kube) watched(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.watchers[name]
	return ok
}

func (k *Kube) unsubscribe(name string) {
	k.mu.Lock()
	delete(k.watchers, name)
	k.mu.Unlock()
}

// activePods lists the build pods that hold a build slot: those not finished.
func (k *Kube) activePods() []*corev1.Pod {
	pods, _ := k.pods.List(labels.Everything()) // a cache read cannot fail
	active := pods[:0:0]
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			active = append(active, p)
		}
	}
	return active
}

// Run builds req in a pod, or attaches to the pod already building its
// image, whichever replica started it.
func (k *Kube) Run(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
	name, building := k.claim(req)
	if name == "" {
		return nameClash(req)
	}
	req.Name = name
	poke := k.subscribe(req.Name)
	defer func() { k.unsubscribe(req.Name) }()
	owner := false // this build created the pod, rather than attached to it
	if !building {
		if err := k.queue.wait(ctx, req, log); err != nil {
			return err
		}
		defer func() { k.queue.done(req.Name) }()
		joined, err := k.acquire(ctx, req, log)
		if err != nil {
			return err
		}
		if !joined {
			owner = true
			defer k.release(ctx, name)
			created, err := k.create(ctx, req)
			if err != nil {
				return err
			}
			k.queue.rename(req.Name, created)
			if created != req.Name {
				k.unsubscribe(req.Name)
				req.Name = created
				poke = k.subscribe(req.Name)
			}
		}
	}
	trackerFrom(ctx).start() // admitted, or attached to a pod already building
	w := &podWatch{k: k, req: req, owner: owner, poke: poke, logRecorder: logRecorder{log: log}}
	return w.run(ctx)
}

// acquire waits for a cluster-wide build slot once this replica's queue
// admitted req. joined reports that another replica claimed a slot for the
// same image meanwhile: the build attaches to its pod.
func (k *Kube) acquire(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) (joined bool, err error) {
	joined, err = k.slots.acquire(ctx, req, func() {
		log.Append(events.Message("waiting", fmt.Sprintf(
			"Waiting for a build slot: builds started by other replicas hold them (at most %d builds run at once).\n", k.cfg.ConcurrentBuildLimit)))
	})
	if err != nil && ctx.Err() == nil {
		k.log.ErrorContext(ctx, "claim build slot", "pod", req.Name, "error", err)
		return false, events.Fail(events.CauseFailed, "Unhandled error watching for build events. Please try again.\n")
	}
	return joined, err
}

// release frees the cluster-wide slot of the build of pod name.
func (k *Kube) release(ctx context.Context, name string) {
	if err := k.slots.release(context.WithoutCancel(ctx), name); err != nil {
		k.log.WarnContext(ctx, "release build slot", "pod", name, "error", err)
	}
}

// claim picks req's pod name from the informer's cache: the first of its
// names whose pod builds req's image (building), else the first free one
// ("" when none is).
func (k *Kube) claim(req binderbuild.BuildRequest) (name string, building bool) {
	for _, n := range buildNames(req) {
		p, err := k.pods.Get(n)
		if apierrors.IsNotFound(err) {
			return n, false
		}
		if err == nil && p.Annotations[imageKey] == req.Image {
			return n, true
		}
	}
	return "", false
}

// create creates the build pod under req.Name or, when a pod of another
// image holds that name (the cache had not seen it), under the alternative
// name. A pod of req's image existing already is a build started by
// another replica or before a restart, and is attached to. It returns the
// name of the pod.
func (k *Kube) create(ctx context.Context, req binderbuild.BuildRequest) (string, error) {
	pods := k.client.CoreV1().Pods(k.cfg.BuildNamespace)
	node := k.stickyNode(ctx, req.RepoURL)
	for _, name := range buildNames(req) {
		r := req
		r.Name = name
		_, err := pods.Create(ctx, k.cfg.pod(r, node), metav1.CreateOptions{})
		if err == nil {
			return name, nil
		}
		if refused(err) {
			k.log.WarnContext(ctx, "build pod refused", "pod", name, "error", err)
			return "", events.Fail(events.CauseFailed, "Build failed: the API server refused the build pod: "+err.Error()+"\n")
		}
		if !apierrors.IsAlreadyExists(err) {
			k.log.ErrorContext(ctx, "create build pod", "pod", name, "error", err)
			return "", events.Fail(events.CauseFailed, "Unhandled error watching for build events. Please try again.\n")
		}
		if live, err := pods.Get(ctx, name, metav1.GetOptions{}); err == nil && k.cfg.ours(live) && live.Annotations[imageKey] == req.Image {
			return name, nil
		}
	}
	return "", nameClash(req)
}

// refused reports whether the API server turned a pod down for a reason
// its message says and the operator can change: a ResourceQuota or
// LimitRange (403), a missing permission (403), an invalid spec (422), an
// admission webhook (400 or the code it chose). Not a name clash (409), a
// rate limit (429) or a server error, whose message helps nobody asking
// for a build.
func refused(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && code != http.StatusConflict && code != http.StatusTooManyRequests
}

// stickyNode is the docker-api node ranked first for repoURL, when sticky
// builds are on.
func (k *Kube) stickyNode(ctx context.Context, repoURL string) string {
	if !k.cfg.StickyBuilds {
		return ""
	}
	pods, err := k.client.CoreV1().Pods(k.cfg.BuildNamespace).List(ctx, metav1.ListOptions{LabelSelector: k.cfg.DockerApiSelector})
	if err != nil {
		k.log.WarnContext(ctx, "list docker-api pods for sticky builds", "error", err)
		return ""
	}
	var nodes []string
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			nodes = append(nodes, p.Spec.NodeName)
		}
	}
	if len(nodes) == 0 {
		return ""
	}
	return rendezvousRank(nodes, repoURL)[0]
}

// deletePod deletes a build pod at once; a pod already gone is fine.
func (k *Kube) deletePod(ctx context.Context, name string) {
	err := k.client.CoreV1().Pods(k.cfg.BuildNamespace).Delete(context.WithoutCancel(ctx), name,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		k.log.WarnContext(ctx, "delete build pod", "pod", name, "error", err)
	}
}

// electCleaner runs the cleanup loop on one replica at a time: the holder
// of the cleanup Lease (client-go leader election). A replica losing the
// Lease stands again until ctx ends.
func (k *Kube) electCleaner(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: k.cfg.BuildNamespace, Name: k.cfg.leaseName("cleanup")},
		Client:     k.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: k.cfg.Identity},
	}
	// The elector logs through klog's contextual logger: send it to ours.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(k.log.Handler()))
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            "binderbuild cleanup",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					k.log.InfoContext(ctx, "this replica runs the build pod cleanup", "identity", k.cfg.Identity)
					k.cleanupLoop(ctx)
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil { // the durations above are valid
			k.log.ErrorContext(ctx, "cleanup election", "error", err)
			return
		}
		elector.Run(ctx)
	}
}

// cleanupLoop deletes finished build pods nobody deleted (orphans of a
// restart) and pods older than BuildMaxAge, while this replica leads.
func (k *Kube) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.cleanup(ctx, time.Now())
		}
	}
}

func (k *Kube) cleanup(ctx context.Context, now time.Time) {
	pods, _ := k.pods.List(labels.Everything())
	for _, p := range pods {
		reason := cleanupReason(p, now, k.cfg.BuildMaxAge, k.cfg.CleanupInterval)
		if reason == "finished" && k.watched(p.Name) {
			continue // its build deletes it once it read the whole log
		}
		if reason != "" {
			k.log.InfoContext(ctx, "cleanup build pod", "pod", p.Name, "reason", reason)
			k.deletePod(ctx, p.Name)
		}
	}
}

// cleanupReason says why a pod should go, or "". A finished pod is left to
// its build for one interval, so that the build reads the end of its log.
func cleanupReason(p *corev1.Pod, now time.Time, maxAge, grace time.Duration) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		if finished := finishedAt(p); finished.IsZero() || now.Sub(finished) >= grace {
			return "finished"
		}
	}
	started := p.CreationTimestamp.Time
	if p.Status.StartTime != nil {
		started = p.Status.StartTime.Time
	}
	if maxAge > 0 && now.Sub(started) > maxAge {
		return "older than " + maxAge.String()
	}
	return ""
}

func finishedAt(p *corev1.Pod) time.Time {
	var t time.Time
	for _, c := range p.Status.ContainerStatuses {
		if term := c.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	return t
}
