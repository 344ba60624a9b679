package builder

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// queue admits builds first come, first served while fewer than limit builds
// are active (build pods counted from the informer, so the limit holds across
// replicas; build containers listed from the engine) and fewer than perRepo
// of the same repository.
type queue struct {
	limit, perRepo int
	active         func() []slot
	// where says in the position message what the positions count:
	// "in the queue" by default.
	where string

	mu      sync.Mutex
	waiting []*ticket
	// admitted maps builds let in whose pods the informer may not show yet
	// to their repository, so they hold their slot meanwhile.
	admitted map[string]string
}

type ticket struct {
	req      binderbuild.BuildRequest
	admit    chan struct{} // closed when the build may start
	moved    chan struct{} // poked when the position changed
	position int           // 1-based, 0 once admitted
}

// slot is a running build that holds a build slot.
type slot struct {
	name, repo string
}

func newQueue(limit, perRepo int, active func() []*corev1.Pod) *queue {
	return newSlotQueue(limit, perRepo, func() []slot {
		pods := active()
		slots := make([]slot, len(pods))
		for i, p := range pods {
			slots[i] = slot{name: p.Name, repo: p.Annotations[repoAnnotation]}
		}
		return slots
	})
}

// newSlotQueue returns a queue counting the builds active lists.
func newSlotQueue(limit, perRepo int, active func() []slot) *queue {
	return &queue{limit: limit, perRepo: perRepo, active: active, where: "in the queue", admitted: make(map[string]string)}
}

// wait blocks until req may start, telling the client its place in the
// queue whenever it changes.
func (q *queue) wait(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
	tr := trackerFrom(ctx) // queue metrics; nil outside Shared
	tr.enqueued()
	admitted := false
	defer func() { tr.dequeued(admitted) }()
	t := &ticket{req: req, admit: make(chan struct{}), moved: make(chan struct{}, 1)}
	q.mu.Lock()
	q.waiting = append(q.waiting, t)
	q.mu.Unlock()
	q.admit()
	told := 0
	for {
		select {
		case <-t.admit:
			admitted = true
			return nil
		case <-t.moved:
			q.mu.Lock()
			pos, total := t.position, len(q.waiting)
			q.mu.Unlock()
			if pos > 0 && pos != told {
				told = pos
				log.Append(events.Message("waiting", fmt.Sprintf(
					"Waiting for a build slot: position %d of %d %s (at most %d builds run at once).\n", pos, total, q.where, q.limit)))
			}
		case <-ctx.Done():
			q.remove(t)
			return ctx.Err()
		}
	}
}

// done releases the slot held by a build admitted but possibly not yet seen
// as a pod; the pod itself holds it from then on.
func (q *queue) done(name string) {
	q.mu.Lock()
	delete(q.admitted, name)
	q.mu.Unlock()
	q.admit()
}

// rename moves the slot of an admitted build that took another name.
func (q *queue) rename(from, to string) {
	if from == to {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if repo, ok := q.admitted[from]; ok {
		delete(q.admitted, from)
		q.admitted[to] = repo
	}
}

func (q *queue) remove(t *ticket) {
	q.mu.Lock()
	for i, w := range q.waiting {
		if w == t {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	q.mu.Unlock()
	q.admit()
}

// admit lets in the waiting builds that fit, in order, and tells the others
// their new places. It runs on every pod change.
func (q *queue) admit() {
	q.mu.Lock()
	idle := len(q.waiting) == 0
	q.mu.Unlock()
	if idle {
		return // spare active(): the local executor asks the engine
	}
	active := q.active()
	q.mu.Lock()
	defer q.mu.Unlock()
	held := make(map[string]string, len(active)+len(q.admitted)) // build name → repo
	for _, s := range active {
		held[s.name] = s.repo
	}
	for name, repo := range q.admitted {
		held[name] = repo
	}
	perRepo := make(map[string]int)
	for _, repo := range held {
		perRepo[repo]++
	}
	total := len(held)
	kept := q.waiting[:0]
	for _, t := range q.waiting {
		if (q.limit <= 0 || total < q.limit) && (q.perRepo <= 0 || perRepo[t.req.RepoURL] < q.perRepo) {
			total++
			perRepo[t.req.RepoURL]++
			q.admitted[t.req.Name] = t.req.RepoURL
			t.position = 0
			close(t.admit)
			continue
		}
		kept = append(kept, t)
	}
	q.waiting = kept
	for i, t := range q.waiting {
		if t.position != i+1 {
			t.position = i + 1
			select {
			case t.moved <- struct{}{}:
			default:
			}
		}
	}
}
