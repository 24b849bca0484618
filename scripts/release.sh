#!/usr/bin/env bash
# Cuts a release: bumps VERSION (semantic versioning), moves CHANGELOG.md's
# "## [Unreleased]" section under "## [X.Y.Z] - YYYY-MM-DD" (leaving a fresh,
# empty Unreleased section), keeps the Dockerfile's WORKER_VERSION label in
# step, commits "Release vX.Y.Z" and creates the annotated tag vX.Y.Z.
#
# Usage: scripts/release.sh patch|minor|major   (or: make patch|minor|major)
#
# It refuses, changing nothing, when the work tree has uncommitted changes,
# when the tag already exists, or when the Unreleased section is empty.
# RELEASE_DATE=YYYY-MM-DD overrides today's date (UTC). Nothing is pushed:
# the script prints the push commands. See docs/releases.md.
set -euo pipefail

die() {
  echo "release: $*" >&2
  exit 1
}

part="${1:-}"
case "$part" in
  patch | minor | major) ;;
  *) die "usage: $0 patch|minor|major (bug fixes | new features | breaking changes)" ;;
esac

root="$(git rev-parse --show-toplevel 2>/dev/null)" || die "not inside a git repository"
cd "$root"

[ -f VERSION ] || die "no VERSION file at the repository root"
[ -f CHANGELOG.md ] || die "no CHANGELOG.md at the repository root"

if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then
  git status --short >&2
  die "the work tree has uncommitted changes (above): commit or remove them first, so that the release commit holds only the release"
fi

current="$(tr -d '[:space:]' <VERSION)"
if [[ ! "$current" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  die "VERSION holds '$current', not MAJOR.MINOR.PATCH"
fi
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
patch="${BASH_REMATCH[3]}"
case "$part" in
  patch) patch=$((patch + 1)) ;;
  minor) minor=$((minor + 1)) && patch=0 ;;
  major) major=$((major + 1)) && minor=0 && patch=0 ;;
esac
next="$major.$minor.$patch"
tag="v$next"

if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  die "tag $tag already exists: VERSION ($current) is behind the tags; set VERSION to the latest released version, commit, and run again"
fi

date="${RELEASE_DATE:-$(date -u +%Y-%m-%d)}"
[[ "$date" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "RELEASE_DATE '$date' is not YYYY-MM-DD"

grep -q '^## \[Unreleased\]' CHANGELOG.md || die "CHANGELOG.md has no '## [Unreleased]' section"

# The Unreleased section's body: from its heading to the next "## " heading.
# Empty means nothing but blank lines and "###" sub-headings.
entries="$(awk '
  /^## \[Unreleased\]/ { inside = 1; next }
  inside && /^## / { exit }
  inside && !/^[[:space:]]*$/ && !/^### / { n++ }
  END { print n + 0 }
' CHANGELOG.md)"
if [ "$entries" -eq 0 ]; then
  die "the Unreleased section of CHANGELOG.md is empty: add what changed under '## [Unreleased]' (e.g. '### Fixed' then '- ...'), commit, and run again"
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
awk -v heading="## [$next] - $date" '
  /^## \[Unreleased\]/ && !done { print; print ""; print heading; done = 1; skip_blank = 1; next }
  skip_blank && /^[[:space:]]*$/ { next }
  { skip_blank = 0; print }
' CHANGELOG.md >"$tmp"
cat "$tmp" >CHANGELOG.md
echo "$next" >VERSION
files=(VERSION CHANGELOG.md)
if [ -f Dockerfile ] && grep -q '^ARG WORKER_VERSION=' Dockerfile; then
  sed -i "s/^ARG WORKER_VERSION=.*/ARG WORKER_VERSION=$next/" Dockerfile
  files+=(Dockerfile)
fi

notes="$(awk -v heading="## [$next] - $date" '
  $0 == heading { inside = 1; next }
  inside && /^## / { exit }
  inside { print }
' CHANGELOG.md)"

git add -- "${files[@]}"
git commit -q -m "Release $tag"
git tag -a "$tag" -m "Release $tag" -m "$notes"

echo "Released $tag (was $current): committed and tagged."
echo "Publish it with:"
echo "  git push && git push origin $tag"
echo "  docker build --build-arg COMMIT=\"\$(git rev-parse --short=12 HEAD)\" -t <registry>/wan22-worker:$next ."
echo "  docker push <registry>/wan22-worker:$next"
