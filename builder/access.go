package builder

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// permission is one thing the executor does with the API server.
type permission struct {
	verb, group, resource, subresource string
}

func (p permission) String() string {
	s := p.verb + " " + p.resource
	if p.subresource != "" {
		s += "/" + p.subresource
	}
	if p.group != "" {
		s += "." + p.group
	}
	return s
}

// permissions are exactly what the executor uses in the build namespace
// (the chart's Role grants them).
var permissions = []permission{
	{"get", "", "pods", ""}, {"list", "", "pods", ""}, {"watch", "", "pods", ""},
	{"create", "", "pods", ""}, {"delete", "", "pods", ""},
	{"get", "", "pods", "log"},
	{"get", "coordination.k8s.io", "leases", ""}, {"create", "coordination.k8s.io", "leases", ""},
	{"update", "coordination.k8s.io", "leases", ""},
}

// checkAccess asks the API server (SelfSubjectAccessReview) whether the
// service account may do what the executor does, and names every
// permission it lacks. When the review itself fails, the informer's list
// error reports the problem instead.
func (k *Kube) checkAccess(ctx context.Context) error {
	var missing []string
	for _, p := range permissions {
		review, err := k.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: k.cfg.BuildNamespace, Verb: p.verb, Group: p.group, Resource: p.resource, Subresource: p.subresource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			k.log.WarnContext(ctx, "check Kubernetes permissions", "error", err)
			return nil
		}
		if !review.Status.Allowed {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the service account may not %s in namespace %s: grant them with a Role (the chart's rbac.create does)",
			strings.Join(missing, ", "), k.cfg.BuildNamespace)
	}
	return nil
}
