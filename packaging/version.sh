#!/bin/sh
# version.sh: the Debian version of this checkout, stamped into the binaries and the .debs.
#   on a tag v1.2.3: 1.2.3; 4 commits after it: 1.2.3+4.g<sha>; no tag yet: 0.0.0~git<date>.<sha>
#   (~ sorts before any release); uncommitted changes add +dirty.
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then echo 0.0.0~unknown; exit 0; fi
sha=$(git rev-parse --short=7 HEAD)
if d=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	n=$(echo "$d" | sed 's/.*-\([0-9]*\)-g[0-9a-f]*$/\1/'); tag=$(echo "$d" | sed 's/-[0-9]*-g[0-9a-f]*$//; s/^v//')
	if [ "$n" = 0 ]; then v=$tag; else v=$tag+$n.g$sha; fi
else
	v=0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$sha
fi
git diff --quiet HEAD 2>/dev/null || v=$v+dirty
echo "$v"
