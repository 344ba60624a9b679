#!/bin/bash
# jupyter-repo2docker stand-in for binderbuild's tests (internal/testdocker).
#
# It takes repo2docker's arguments (--ref=, --image=, --push, the other flags
# ignored, the repository URL last), clones the repository, builds its
# Dockerfile with the engine at /var/run/docker.sock (legacy builder) and
# pushes the image, printing repo2docker-style JSON log lines as
# --json-logs does: fetching, building, pushing with progress and layers, and
# a failed line on error.
#
# Files in the repository's .fake-r2d/ folder script the tests' cases:
#   hold  a URL fetched with curl before building: the build goes on when
#         the test answers it
#   exit  an exit code to end with after fetching, without a failed line
#   oom   MiB to allocate before building (memory limit tests)
set -uo pipefail
export DOCKER_BUILDKIT=0

ref='' image='' push=0 repo=''
while [ $# -gt 0 ]; do
	case "$1" in
	--ref=*) ref=${1#--ref=} ;;
	--image=*) image=${1#--image=} ;;
	--push) push=1 ;;
	--appendix) shift ;;
	-*) ;; # --no-clean, --no-run, --json-logs, --user-name=, --user-id=, extra args
	*) repo=$1 ;;
	esac
	shift
done

# lines PHASE: every input line as a JSON log line of PHASE.
lines() {
	tr -d '\000-\010\013-\037' | awk -v phase="$1" '{
		gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t")
		printf "{\"message\": \"%s\\n\", \"phase\": \"%s\"}\n", $0, phase; fflush()
	}'
}

# say PHASE MESSAGE: one JSON log line; MESSAGE is already JSON-escaped.
say() { printf '{"message": "%s", "phase": "%s"}\n' "$2" "$1"; }

# fail MESSAGE: repo2docker's failed line, then exit 1.
fail() {
	printf '%s\n' "$1" | grep -v '^$' | tail -n 1 | lines failed
	exit 1
}

[ -n "$repo" ] && [ -n "$image" ] || fail "usage: jupyter-repo2docker --ref=<ref> --image=<image> [--push] <repository>"

printf '{"message": "Picked Git content provider.\\n"}\n'
dir=$(mktemp -d /tmp/repo2dockerXXXXXXXX)
say fetching "Cloning into '$dir'...\\n"
git clone --quiet "$repo" "$dir" 2>&1 | lines fetching || fail "Failed to clone repository $repo"
cd "$dir" || fail "no clone"
if [ -n "$ref" ]; then
	git -c advice.detachedHead=false checkout --quiet "$ref" 2>&1 | lines fetching || fail "Failed to check out ref $ref"
fi
git log -1 --format='HEAD is now at %h %s' | lines fetching

if [ -f .fake-r2d/exit ]; then
	code=$(cat .fake-r2d/exit)
	say building "Crashing on purpose with exit code $code\\n"
	exit "$code"
fi
if [ -f .fake-r2d/oom ]; then
	say building "Allocating $(cat .fake-r2d/oom) MiB\\n"
	# tail keeps its whole input line in memory.
	head -c "$(cat .fake-r2d/oom)M" /dev/zero | tail >/dev/null || exit $?
fi
if [ -f .fake-r2d/hold ]; then
	say building "Waiting for the test to let the build go on\\n"
	curl -fsS "$(cat .fake-r2d/hold)" >/dev/null 2>&1
fi

say building "Using DockerBuildPack builder\\n"
docker build --label "repo2docker.ref=$ref" --label "repo2docker.repo=$repo" -t "$image" . 2>/tmp/build.err | lines building
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "$(cat /tmp/build.err)"

if [ "$push" = 1 ]; then
	docker push "$image" 2>/tmp/push.err | awk '
		/^[0-9a-f]+: / {
			id = substr($1, 1, length($1) - 1)
			st = substr($0, length($1) + 2)
			if (st ~ /^digest: /) next # "<tag>: digest: sha256:... size: N"
			gsub(/\\/, "\\\\", st); gsub(/"/, "\\\"", st)
			if (!(id in layers)) order[++n] = id
			layers[id] = st
			s = ""
			for (i = 1; i <= n; i++) s = s (i > 1 ? ", " : "") "\"" order[i] "\": \"" layers[order[i]] "\""
			printf "{\"message\": \"Pushing image\\n\", \"progress\": {%s}, \"layers\": {%s}, \"phase\": \"pushing\"}\n", s, s
			fflush()
		}'
	[ "${PIPESTATUS[0]}" -eq 0 ] || fail "$(cat /tmp/push.err)"
	say pushing "Successfully pushed $image"
fi
