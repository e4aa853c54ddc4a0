#!/usr/bin/env bash
# Packs Gatehouse as npm would publish it, installs the tarball into an empty project, and runs
# the installed `gatehouse` bin (which must use dist/, since the package has no src/).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tgz=$(npm pack --silent --pack-destination "$work" | tail -1)
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --omit=dev "$work/$tgz" >/dev/null
node_modules/.bin/gatehouse validate -c node_modules/gatehouse/examples/quickstart.yaml
test ! -e node_modules/gatehouse/src && test -f node_modules/gatehouse/dist/cli.js
# The admin dashboard is read from the package at run time.
test -f node_modules/gatehouse/assets/dashboard.html
echo "check-pack: ok ($tgz)"
