package builder

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/binderbuild/binderbuild"
)

// Labels and names shared with upstream BinderHub: the NetworkPolicies and
// the cleaner select build pods by them.
const (
	componentLabel = "component"
	buildComponent = "binderhub-build"
	repoAnnotation = "binder-repo"
	containerName  = "builder"
	// releaseLabel holds the installation (PodConfig.Release) a build pod
	// belongs to.
	releaseLabel = "binderbuild.org/release"
)

// PodConfig is the build pod part of the Kubernetes executor's settings.
type PodConfig struct {
	BuildNamespace string `split_words:"true" fallback:"BUILD_NAMESPACE,NAMESPACE" default:"default" desc:"namespace of build pods"`
	BuildImage     string `split_words:"true" default:"quay.io/jupyterhub/repo2docker:2024.07.0" desc:"repo2docker image the build pods run"`
	// DockerHost is the host path (or unix:// URL) of the docker-api socket.
	DockerHost                   string            `split_words:"true" desc:"host socket of docker-api mounted into build pods (default: /var/run/$NAMESPACE-$HELM_RELEASE_NAME/docker-api/docker-api.sock when both are set, else /var/run/docker.sock)"`
	BuildNodeSelector            map[string]string `split_words:"true" desc:"node selector of build pods, k:v,k:v (the docker-api DaemonSet's)"`
	BuildEphemeralStorageRequest string            `split_words:"true" desc:"ephemeral-storage request of build pods, e.g. 10Gi"`
	BuildEphemeralStorageLimit   string            `split_words:"true" desc:"ephemeral-storage limit of build pods"`
	BuildMemoryRequest           string            `split_words:"true" desc:"memory request of build pods"`
	BuildMemoryLimit             string            `split_words:"true" desc:"memory limit of build pods"`
	PushSecret                   string            `split_words:"true" fallback:"PUSH_SECRET_NAME" desc:"docker-config Secret mounted into build pods for pushing"`
	BuildImagePullSecrets        []string          `split_words:"true" desc:"image pull secrets of build pods"`
	StickyBuilds                 bool              `split_words:"true" default:"false" desc:"prefer the docker-api node that built the repository before (keeps its layer cache warm)"`
	DockerApiSelector            string            `split_words:"true" default:"app.kubernetes.io/component=docker-api" desc:"label selector of the docker-api pods, for sticky builds"`
	BuildTimeout                 time.Duration     `split_words:"true" default:"0" desc:"longest a build may take, counted from its pod's creation (queueing excluded; also the pod's activeDeadlineSeconds); 0: no limit, as upstream"`
	BuildAppendix                string            `split_words:"true" desc:"Dockerfile instructions repo2docker appends to every image (--appendix; upstream BuildExecutor.appendix)"`
	Repo2dockerExtraArgs         []string          `split_words:"true" desc:"extra repo2docker arguments, comma list"`
	BuildResources               Resources         `split_words:"true" desc:"resources of build pods as JSON, e.g. {\"requests\":{\"cpu\":\"1\"},\"limits\":{\"memory\":\"4Gi\"}} (upstream KubernetesBuildExecutor.resources); its entries replace the memory and ephemeral-storage settings of the same name"`
	BuildExtraEnv                EnvVars           `split_words:"true" desc:"extra environment variables of build pods as a JSON object of name to value (upstream KubernetesBuildExecutor.extra_envs)"`
	Release                      string            `split_words:"true" fallback:"HELM_RELEASE_NAME" desc:"name of this installation (unset: $HELM_RELEASE_NAME); its build pods carry it in the label binderbuild.org/release, so installations sharing a namespace never attach to or delete each other's pods"`
	// Push adds --push; set when a registry is used.
	Push bool `ignored:"true"`
}

// hubTolerations let build pods run on JupyterHub's dedicated user nodes.
var hubTolerations = []corev1.Toleration{
	{Key: "hub.jupyter.org/dedicated", Operator: corev1.TolerationOpEqual, Value: "user", Effect: corev1.TaintEffectNoSchedule},
	{Key: "hub.jupyter.org_dedicated", Operator: corev1.TolerationOpEqual, Value: "user", Effect: corev1.TaintEffectNoSchedule},
}

// Validate checks the settings that would otherwise fail at pod creation.
func (c PodConfig) Validate() error {
	for name, q := range map[string]string{
		"BINDERBUILD_BUILD_EPHEMERAL_STORAGE_REQUEST": c.BuildEphemeralStorageRequest,
		"BINDERBUILD_BUILD_EPHEMERAL_STORAGE_LIMIT":   c.BuildEphemeralStorageLimit,
		"BINDERBUILD_BUILD_MEMORY_REQUEST":            c.BuildMemoryRequest,
		"BINDERBUILD_BUILD_MEMORY_LIMIT":              c.BuildMemoryLimit,
	} {
		if _, err := parseQuantity(q); err != nil {
			return fmt.Errorf("invalid %s=%q: %v", name, q, err)
		}
	}
	if _, err := socketPath(c.DockerHost); err != nil {
		return fmt.Errorf("invalid BINDERBUILD_DOCKER_HOST=%q: %v", c.DockerHost, err)
	}
	if errs := validation.IsValidLabelValue(c.Release); len(errs) > 0 {
		return fmt.Errorf("invalid BINDERBUILD_RELEASE=%q: %s", c.Release, strings.Join(errs, "; "))
	}
	return nil
}

// selector selects the build pods of this installation.
func (c PodConfig) selector() string {
	return componentLabel + "=" + buildComponent + "," + releaseLabel + "=" + c.Release
}

// ours reports whether p is a build pod of this installation.
func (c PodConfig) ours(p *corev1.Pod) bool {
	v, ok := p.Labels[releaseLabel]
	return ok && v == c.Release && p.Labels[componentLabel] == buildComponent
}

// parseQuantity parses a Kubernetes quantity; upstream's K/M/G/T suffixes
// are powers of 1024, as in Ki/Mi/Gi/Ti.
func parseQuantity(s string) (*resource.Quantity, error) {
	if s == "" {
		return nil, nil
	}
	if n := len(s); n > 1 && strings.ContainsRune("KMGT", rune(s[n-1])) && s[n-2] >= '0' && s[n-2] <= '9' {
		s += "i"
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return nil, err
	}
	return &q, nil
}

// socketPath returns the host path of a docker host setting.
func socketPath(host string) (string, error) {
	if !strings.Contains(host, "://") {
		return host, nil
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Host != "" {
		return "", fmt.Errorf("only unix domain sockets on the same node are supported")
	}
	return u.Path, nil
}

// args are repo2docker's arguments, in upstream's order; the repository URL
// is always last.
func (c PodConfig) args(req binderbuild.BuildRequest) []string {
	args := []string{"jupyter-repo2docker", "--ref=" + req.Ref, "--image=" + req.Image,
		"--no-clean", "--no-run", "--json-logs", "--user-name=jovyan", "--user-id=1000"}
	if c.BuildAppendix != "" {
		args = append(args, "--appendix", c.BuildAppendix)
	}
	if c.Push {
		args = append(args, "--push")
	}
	args = append(args, c.Repo2dockerExtraArgs...)
	return append(args, req.RepoURL)
}

func (c PodConfig) resources() corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	set := func(list corev1.ResourceList, name corev1.ResourceName, s string) {
		if q, _ := parseQuantity(s); q != nil { // validated at start-up
			list[name] = *q
		}
	}
	set(r.Requests, corev1.ResourceEphemeralStorage, c.BuildEphemeralStorageRequest)
	set(r.Limits, corev1.ResourceEphemeralStorage, c.BuildEphemeralStorageLimit)
	set(r.Requests, corev1.ResourceMemory, c.BuildMemoryRequest)
	set(r.Limits, corev1.ResourceMemory, c.BuildMemoryLimit)
	if c.BuildMemoryLimit != "" && c.BuildMemoryRequest == "" {
		// As upstream: without it the API server makes the request equal
		// to the limit, and every build reserves the whole limit.
		r.Requests[corev1.ResourceMemory] = resource.MustParse("0")
	}
	return c.BuildResources.overlay(r)
}

// pod is the build pod of req. stickyNode, when set, is the preferred node.
func (c PodConfig) pod(req binderbuild.BuildRequest, stickyNode string) *corev1.Pod {
	sock, _ := socketPath(c.DockerHost) // validated at start-up
	// Extra variables first, as upstream; the git credential variables
	// replace any of the same names (a duplicate would only draw an API
	// server warning).
	env := c.BuildExtraEnv.list()
	for _, e := range gitCredentialEnv(req) {
		env = slices.DeleteFunc(env, func(v corev1.EnvVar) bool { return v.Name == e.name })
		env = append(env, corev1.EnvVar{Name: e.name, Value: e.value})
	}
	mounts := []corev1.VolumeMount{{Name: "docker-socket", MountPath: "/var/run/docker.sock"}}
	volumes := []corev1.Volume{{Name: "docker-socket", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: sock, Type: ptr.To(corev1.HostPathSocket)}}}}
	if c.Push && c.PushSecret != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "docker-config", MountPath: "/root/.docker/config.json", SubPath: "config.json", ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "docker-config", VolumeSource: corev1.VolumeSource{
			// Listing the key makes a Secret without it a mount error;
			// otherwise the kubelet would mount an empty directory as
			// config.json and the build would push without credentials.
			Secret: &corev1.SecretVolumeSource{SecretName: c.PushSecret, Items: []corev1.KeyToPath{{Key: "config.json", Path: "config.json"}}}}})
	}
	var pullSecrets []corev1.LocalObjectReference
	for _, s := range c.BuildImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        req.Name,
			Labels:      map[string]string{"name": req.Name, componentLabel: buildComponent, releaseLabel: c.Release},
			Annotations: map[string]string{repoAnnotation: req.RepoURL, imageKey: req.Image},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:         containerName,
				Image:        cmp.Or(req.BuildImage, c.BuildImage),
				Args:         c.args(req),
				Resources:    c.resources(),
				Env:          env,
				VolumeMounts: mounts,
				// repo2docker runs as root to use the docker socket; it needs
				// no added capabilities and must not escalate.
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
			Volumes:                       volumes,
			Tolerations:                   hubTolerations,
			NodeSelector:                  c.BuildNodeSelector,
			Affinity:                      affinity(stickyNode),
			ImagePullSecrets:              pullSecrets,
			ActiveDeadlineSeconds:         c.activeDeadline(),
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
		},
	}
}

// activeDeadline is the pod's own deadline, which the kubelet enforces
// from the pod's start even when no replica watches it; nil without a
// build timeout.
func (c PodConfig) activeDeadline() *int64 {
	if c.BuildTimeout <= 0 {
		return nil
	}
	return ptr.To(int64(c.BuildTimeout.Seconds()))
}

// affinity prefers the sticky node when there is one, else spreads build
// pods over nodes.
func affinity(stickyNode string) *corev1.Affinity {
	if stickyNode != "" {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
				Weight: 100,
				Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{stickyNode},
				}}},
			}},
		}}
	}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey:   "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{componentLabel: buildComponent}},
			},
		}},
	}}
}

// rendezvousRank orders buckets for key by highest random weight, as
// upstream does: BLAKE2b with an 8-byte digest of "<key>-<bucket>".
func rendezvousRank(buckets []string, key string) []string {
	type scored struct {
		bucket string
		score  uint64
	}
	s := make([]scored, len(buckets))
	for i, b := range buckets {
		h, _ := blake2b.New(8, nil) // 8 is a valid size: no error
		h.Write([]byte(key + "-" + b))
		s[i] = scored{b, binary.BigEndian.Uint64(h.Sum(nil))}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return -strings.Compare(a.bucket, b.bucket)
	})
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.bucket
	}
	return out
}
