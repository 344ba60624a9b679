package server

import (
	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/ttl"
)

// maxHits bounds the memo of cache hits, of about 2 KB each (maxHitSpec).
const maxHits = 4096

// hits memoizes what a /build request writes for each resolved repository:
// its image name, the ready event of a cache hit and the build event that
// counts the hit, encoded once. A warm request copies them instead of
// encoding them again. Everything in a hit follows from its key and the
// server's configuration, so entries never go stale.
type hits struct {
	memo    *ttl.Cache[hitKey, *hit]
	prefix  string // Config.ImagePrefix
	emitter EventEmitter
}

type hitKey struct{ provider, spec, ref, slug string }

type hit struct {
	image string
	ready []byte          // the framed last event of a build-only cache hit
	built events.Prepared // the build event of a cache hit
}

func newHits(prefix string, emitter EventEmitter) *hits {
	return &hits{memo: ttl.New[hitKey, *hit](maxHits, nil), prefix: prefix, emitter: emitter}
}

// maxHitSpec bounds the specs whose hits are kept, so that the memo holds
// about 2 KB per entry whatever specs clients send; a longer spec's hit is
// encoded each time.
const maxHitSpec = 256

// get returns the hit of res, encoding it the first time.
func (h *hits) get(res binderbuild.Resolved) *hit {
	if len(res.Spec) > maxHitSpec {
		return h.encode(res)
	}
	key := hitKey{res.ProviderName, res.Spec, res.ResolvedRef, res.BuildSlug}
	if v, ok := h.memo.Peek(key); ok {
		return v
	}
	v := h.encode(res)
	h.memo.Add(key, v, 0)
	return v
}

func (h *hits) encode(res binderbuild.Resolved) *hit {
	image := binderbuild.ImageName(h.prefix, res.BuildSlug, res.ResolvedRef)
	return &hit{
		image: image,
		ready: frame(events.New("ready", events.Field{Key: "phase", Value: "ready"},
			events.Field{Key: "imageName", Value: image}, events.Field{Key: "message", Value: "Done! Found built image\n"})),
		built: h.emitter.Prepare(events.Build{Step: events.BuildSucceeded, CacheHit: true, Cause: events.CauseSuccess,
			Name: binderbuild.BuildName(res.BuildSlug, res.ResolvedRef), Provider: res.ProviderName,
			Spec: res.Spec, Ref: res.ResolvedRef, Image: image}),
	}
}
