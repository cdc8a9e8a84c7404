#!/bin/sh
# The baseline: what a release engineer scripts without the orchestrator, for the
# demo release. Clone each repository, check out its ref, run its recipe, build its
# images, one after the other, every time. No cache, no parallelism, no checks.
#
# usage: naive_demo.sh REPOS_DIR OUT_DIR
# env:   IMAGE_PREFIX (e.g. "bench-x/"), IMAGE_LABEL (key=value put on every image),
#        PYTHON (an interpreter with `build` and setuptools), LIBCALICO_GO_COMMIT
set -eu
REPOS=$1
OUT=$2
: "${IMAGE_PREFIX?}" "${IMAGE_LABEL?}" "${PYTHON?}" "${LIBCALICO_GO_COMMIT?}"
export RELEASE=v3.2.0 ARCH=amd64
export DOCKER_BUILDKIT=0  # the classic builder, as the orchestrator's Engine API builds use
mkdir -p "$OUT/src" "$OUT/dist/bin" "$OUT/dist/python" "$OUT/dist/src"

get() {  # get NAME REF: clone and check out, leaving the shell in the checkout
    git clone --quiet "file://$REPOS/$1" "$OUT/src/$1"
    cd "$OUT/src/$1"
    git -c advice.detachedHead=false checkout --quiet "$2"
    GIT_COMMIT=$(git rev-parse HEAD)
    export GIT_COMMIT
}

image() {  # image DOCKERFILE NAME
    docker build --network none --label "$IMAGE_LABEL" -f "$1" -t "$IMAGE_PREFIX$2:$RELEASE" .
}

get felix v3.2.0
sh build.sh
cp bin/calico-felix "$OUT/dist/bin/"

get calicoctl v3.2.0
sh build.sh
cp bin/calicoctl "$OUT/dist/bin/"

get node v3.2.0
mkdir -p bin
cp "$OUT/dist/bin/calico-felix" bin/
image Dockerfile.amd64 calico/node

get libcalico v0.19.0
"$PYTHON" -m build --sdist --wheel --no-isolation --outdir dist . >/dev/null
cp dist/* "$OUT/dist/python/"
image Dockerfile.calico_test calico/test
image Dockerfile calico/build

get libcalico-go "$LIBCALICO_GO_COMMIT"
git archive --format=tar --prefix=libcalico-go/ HEAD | gzip -n -9 >"$OUT/dist/src/libcalico-go.tar.gz"

get cni-plugin v3.2.0
sh build.sh
cp bin/amd64/calico bin/amd64/calico-ipam "$OUT/dist/bin/"

get libnetwork-plugin v1.1.3
sh build.sh
cp dist/amd64/libnetwork-plugin "$OUT/dist/bin/"

get kube-controllers v3.2.0
sh build.sh
image Dockerfile.amd64 calico/kube-controllers

cd "$OUT/dist"
find . -type f ! -name SHA256SUMS | sort | xargs sha256sum >SHA256SUMS
