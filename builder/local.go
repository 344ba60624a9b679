package builder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// Labels of local build containers besides componentLabel and
// repoAnnotation (a label here): the build name, as on build pods.
const nameLabel = "name"

// engineTimeout bounds one engine call that is not a stream.
const engineTimeout = 30 * time.Second

// LocalConfig configures the local executor. Its build settings (image,
// arguments, limits, timeout, memory limit) are the Kubernetes executor's.
type LocalConfig struct {
	BuildNetwork      string `split_words:"true" desc:"local executor: network of build containers (docker run --network), e.g. host (default: the engine's default network)"`
	BuildDockerConfig string `split_words:"true" desc:"local executor: docker config.json mounted into build containers to push to a registry that needs credentials (default: none)"`
	// EngineHost is the engine's address, unix://<path> (cmd takes it from
	// DOCKER_HOST, default unix:///var/run/docker.sock). Its socket is
	// mounted into build containers at /var/run/docker.sock.
	EngineHost string `ignored:"true"`
	// Build holds the settings shared with the Kubernetes executor:
	// BuildImage, Repo2dockerExtraArgs, Push, BuildMemoryLimit,
	// BuildTimeout, ConcurrentBuildLimit, PerRepoBuildLimit, BuildMaxAge.
	Build KubeConfig `ignored:"true"`
}

// Engine is the part of the Docker Engine API client that the local
// executor uses; *client.Client of github.com/moby/moby/client is one.
type Engine interface {
	Ping(ctx context.Context, options client.PingOptions) (client.PingResult, error)
	ImagePull(ctx context.Context, ref string, options client.ImagePullOptions) (client.ImagePullResponse, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerLogs(ctx context.Context, id string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
}

var _ Engine = (*client.Client)(nil)

// Local runs builds as repo2docker containers on the Docker-compatible
// engine of this machine (Docker, or Podman's Docker API), with the engine's
// socket mounted, the build pods' arguments and the same log handling,
// failure causes, queue, timeout and cleanup as the Kubernetes executor.
// Containers are named after the build and labelled like build pods, so a
// restarted service attaches to the builds still running.
type Local struct {
	cfg    LocalConfig
	engine Engine
	socket string // host path of the engine socket
	log    *slog.Logger
	queue  *queue
	// admitEvery re-runs admission, for slots freed by containers that no
	// build of this process watches (orphans of a restart).
	admitEvery time.Duration
}

var _ Executor = (*Local)(nil)

// NewLocal returns the local executor; call Start to run its cleanup loop.
// It makes no engine call: without an engine the service still starts, and
// each build fails with a message saying what is missing.
func NewLocal(engine Engine, cfg LocalConfig, log *slog.Logger) (*Local, error) {
	if err := cfg.Build.Validate(); err != nil {
		return nil, err
	}
	if cfg.EngineHost == "" {
		cfg.EngineHost = "unix:///var/run/docker.sock"
	}
	sock, err := socketPath(cfg.EngineHost)
	if err != nil || sock == "" {
		return nil, fmt.Errorf("invalid DOCKER_HOST=%q: the local executor mounts the engine socket into build containers, so it needs unix://<path>", cfg.EngineHost)
	}
	if cfg.Build.CleanupInterval <= 0 {
		cfg.Build.CleanupInterval = time.Minute
	}
	l := &Local{cfg: cfg, engine: engine, socket: sock, log: log, admitEvery: 2 * time.Second}
	l.queue = newSlotQueue(cfg.Build.ConcurrentBuildLimit, cfg.Build.PerRepoBuildLimit, l.activeBuilds)
	return l, nil
}

// Start runs the cleanup loop and periodic admission until ctx ends.
func (l *Local) Start(ctx context.Context) {
	go l.loop(ctx)
}

func (l *Local) loop(ctx context.Context) {
	cleanup := time.NewTicker(l.cfg.Build.CleanupInterval)
	defer cleanup.Stop()
	admit := time.NewTicker(l.admitEvery)
	defer admit.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-admit.C:
			l.queue.admit()
		case <-cleanup.C:
			l.cleanup(ctx, time.Now())
		}
	}
}

// Check reports whether the engine answers, for /health; its error says
// what is missing and how to fix it.
func (l *Local) Check(ctx context.Context) error {
	if f := l.ping(ctx); f != nil {
		return errors.New(failureMessage(f))
	}
	return nil
}

// Run builds req in a container, or attaches to the container already
// building its image (started by another request, replica or before a
// restart).
func (l *Local) Run(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
	if f := l.ping(ctx); f != nil {
		return f
	}
	name, building, err := l.claim(ctx, req)
	if err != nil {
		return err
	}
	req.Name = name
	if !building {
		if err := l.queue.wait(ctx, req, log); err != nil {
			return err
		}
		defer func() { l.queue.done(req.Name) }()
		created, err := l.create(ctx, req, log)
		if err != nil {
			return err
		}
		l.queue.rename(req.Name, created)
		req.Name = created
	}
	trackerFrom(ctx).start() // admitted, or attached to a container already building
	w := &containerWatch{l: l, req: req, logRecorder: logRecorder{log: log}}
	return w.run(ctx)
}

// claim picks req's container name: the first of its names whose container
// builds req's image (building), else the first free one.
func (l *Local) claim(ctx context.Context, req binderbuild.BuildRequest) (name string, building bool, err error) {
	for _, n := range buildNames(req) {
		switch image, err := l.imageOf(ctx, n); {
		case cerrdefs.IsNotFound(err):
			return n, false, nil
		case err != nil:
			return "", false, l.engineFailure(ctx, "inspect build container", n, err)
		case image == req.Image:
			return n, true, nil
		}
	}
	return "", false, nameClash(req)
}

// imageOf returns the image that the container called name builds.
func (l *Local) imageOf(ctx context.Context, name string) (string, error) {
	ictx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	res, err := l.engine.ContainerInspect(ictx, name, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	if res.Container.Config == nil {
		return "", nil
	}
	return res.Container.Config.Labels[imageKey], nil
}

// create creates the build container under req.Name or, when a container
// of another image took that name meanwhile, under the alternative name,
// pulling the build image when the engine lacks it. A container of req's
// image existing already is a build started meanwhile, and is attached to.
// It returns the container's name.
func (l *Local) create(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) (string, error) {
	for _, name := range buildNames(req) {
		r := req
		r.Name = name
		opts := l.cfg.container(r, l.socket)
		_, err := l.engine.ContainerCreate(ctx, opts)
		if cerrdefs.IsNotFound(err) { // the build image
			if f := l.pull(ctx, opts.Config.Image, log); f != nil {
				return "", f
			}
			_, err = l.engine.ContainerCreate(ctx, opts)
		}
		if err == nil {
			return name, nil
		}
		if !cerrdefs.IsConflict(err) {
			return "", l.engineFailure(ctx, "create build container", name, err)
		}
		if image, err := l.imageOf(ctx, name); err == nil && image == req.Image {
			return name, nil
		}
	}
	return "", nameClash(req)
}

// engineFailure logs an unexpected engine error and returns the failure
// clients see (the same message as the Kubernetes executor's).
func (l *Local) engineFailure(ctx context.Context, what, name string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	l.log.ErrorContext(ctx, what, "container", name, "error", err)
	return events.Fail(events.CauseFailed, "Unhandled error watching for build events. Please try again.\n")
}

// pull pulls the build image, telling waiting clients.
func (l *Local) pull(ctx context.Context, image string, log *events.Log) *events.Failure {
	log.Append(events.Message("waiting", "Pulling the build image "+image+"\n"))
	resp, err := l.engine.ImagePull(ctx, image, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
		resp.Close()
	}
	if err != nil {
		l.log.WarnContext(ctx, "pull build image", "image", image, "error", err)
		return events.Fail(events.CauseFailed, fmt.Sprintf("Build failed: the container engine could not pull the build image %s: %v\n", image, err))
	}
	return nil
}

// container is the create request of req's build container.
func (c LocalConfig) container(req binderbuild.BuildRequest, socket string) client.ContainerCreateOptions {
	var env []string
	for _, e := range gitCredentialEnv(req) {
		env = append(env, e.name+"="+e.value)
	}
	binds := []string{socket + ":/var/run/docker.sock"}
	if c.Build.Push && c.BuildDockerConfig != "" {
		binds = append(binds, c.BuildDockerConfig+":/root/.docker/config.json:ro")
	}
	var res container.Resources
	if q, _ := parseQuantity(c.Build.BuildMemoryLimit); q != nil { // validated in NewLocal
		res.Memory = q.Value()
		res.MemorySwap = q.Value() // no swap, as in a pod
	}
	return client.ContainerCreateOptions{
		Name: req.Name,
		Config: &container.Config{
			Image: cmp.Or(req.BuildImage, c.Build.BuildImage),
			Cmd:   c.Build.args(req), // the image's entrypoint execs its arguments
			Env:   env,
			Labels: map[string]string{
				nameLabel:      req.Name,
				componentLabel: buildComponent,
				repoAnnotation: req.RepoURL,
				imageKey:       req.Image,
			},
		},
		HostConfig: &container.HostConfig{
			Binds:       binds,
			NetworkMode: container.NetworkMode(c.BuildNetwork),
			Resources:   res,
			// As the build pod: root for the socket, no capabilities, no
			// privilege escalation.
			CapDrop:     []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
		},
	}
}

// ping checks that the engine answers, and says what is missing when not.
func (l *Local) ping(ctx context.Context) *events.Failure {
	if msg := probeSocket(l.socket, l.cfg.EngineHost); msg != "" {
		return events.Fail(events.CauseFailed, msg)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := l.engine.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if ctx.Err() == nil {
			l.log.WarnContext(ctx, "ping container engine", "host", l.cfg.EngineHost, "error", err)
		}
		return events.Fail(events.CauseFailed, fmt.Sprintf("The container engine at %s did not answer: %v\n", l.cfg.EngineHost, err))
	}
	return nil
}

// probeSocket says why no engine listens on the socket, or "".
func probeSocket(path, host string) string {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	switch {
	case err == nil:
		conn.Close()
		return ""
	case errors.Is(err, os.ErrNotExist):
		return "No container engine found at " + host + ": install Docker (apt-get install docker.io) or Podman, or set DOCKER_HOST.\n"
	case errors.Is(err, os.ErrPermission):
		return "Permission denied on the container engine socket " + path +
			": run binderbuild as a user of the docker group (or root), or set DOCKER_HOST to a socket it may use.\n"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "The container engine at " + host + " is not running (connection refused): start it (systemctl start docker) or set DOCKER_HOST.\n"
	default:
		return "The container engine at " + host + " cannot be reached: " + err.Error() + "\n"
	}
}

// failureMessage is the message of a failure's event.
func failureMessage(f *events.Failure) string {
	return strings.TrimSpace(messageOf(f.Event))
}

// activeBuilds lists the build containers holding a build slot: those not
// finished.
func (l *Local) activeBuilds() []slot {
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	list, err := l.listBuilds(ctx)
	if err != nil {
		l.log.Warn("list build containers", "error", err)
		return nil // the builds admitted then fail at create
	}
	var slots []slot
	for _, c := range list {
		if c.State != container.StateExited && c.State != container.StateDead {
			slots = append(slots, slot{name: c.Labels[nameLabel], repo: c.Labels[repoAnnotation]})
		}
	}
	return slots
}

// listBuilds lists every build container, finished ones included.
func (l *Local) listBuilds(ctx context.Context) ([]container.Summary, error) {
	res, err := l.engine.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", componentLabel+"="+buildComponent),
	})
	return res.Items, err
}

// remove removes a build container at once, killing it if it still runs;
// one already gone is fine.
func (l *Local) remove(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engineTimeout)
	defer cancel()
	_, err := l.engine.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		l.log.WarnContext(ctx, "remove build container", "container", name, "error", err)
	}
}

// cleanup removes finished build containers nobody removed (orphans of a
// restart) and containers older than BuildMaxAge.
func (l *Local) cleanup(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	list, err := l.listBuilds(ctx)
	if err != nil {
		if ctx.Err() == nil && probeSocket(l.socket, l.cfg.EngineHost) == "" {
			l.log.WarnContext(ctx, "list build containers for cleanup", "error", err)
		}
		return
	}
	for _, c := range list {
		var finished time.Time
		if c.State == container.StateExited || c.State == container.StateDead {
			if res, err := l.engine.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
				finished, _ = time.Parse(time.RFC3339Nano, res.Container.State.FinishedAt)
			}
		}
		reason := containerCleanupReason(c.State, time.Unix(c.Created, 0), finished, now, l.cfg.Build.BuildMaxAge, l.cfg.Build.CleanupInterval)
		if reason != "" {
			l.log.InfoContext(ctx, "cleanup build container", "container", c.Labels[nameLabel], "reason", reason)
			l.remove(ctx, c.ID)
		}
	}
}

// containerCleanupReason says why a build container should go, or "". As
// with pods, a finished container is left to its build for one interval so
// that the build reads the end of its log.
func containerCleanupReason(state container.ContainerState, created, finished, now time.Time, maxAge, grace time.Duration) string {
	if state == container.StateRemoving {
		return ""
	}
	if state == container.StateExited || state == container.StateDead {
		if finished.IsZero() || now.Sub(finished) >= grace {
			return "finished"
		}
	}
	if maxAge > 0 && now.Sub(created) > maxAge {
		return "older than " + maxAge.String()
	}
	return ""
}
