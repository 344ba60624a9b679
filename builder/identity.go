package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// imageKey is the annotation of build pods (a label of build containers)
// holding the full image name: a build's identity. Build names hash only 24
// bits of the slug, so two repositories can share one; a build is attached
// to only when its image matches.
const imageKey = "binderbuild.org/image"

// maxNameLen is the DNS-1123 label limit of pod names.
const maxNameLen = 63

// altHashLen is the number of hex digits of the image's sha256 in the
// alternative name: 128 bits, beyond brute force.
const altHashLen = 32

// buildNames are the names a build of req may take, in order: upstream's
// name, then one derived from the full image name for when a build of
// another image holds the first.
func buildNames(req binderbuild.BuildRequest) [2]string {
	sum := sha256.Sum256([]byte(req.Image))
	keep := min(len(req.Name), maxNameLen-1-altHashLen)
	return [2]string{req.Name, strings.TrimRight(req.Name[:keep], "-") + "-" + hex.EncodeToString(sum[:altHashLen/2])}
}

// nameClash fails a build whose names are both held by builds of other
// images, which takes a sha256 collision or a hand-made pod.
func nameClash(req binderbuild.BuildRequest) error {
	n := buildNames(req)
	return events.Fail(events.CauseFailed, fmt.Sprintf(
		"Build failed: the build names %s and %s are taken by builds of other images. Please try again later.\n", n[0], n[1]))
}
