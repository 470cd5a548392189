#!/usr/bin/env bash
# Runs Headroom's whole test suite, the one command the README gives.
# It installs Claude Code and the JavaScript AWS SDK's Bedrock Runtime client
# from npm into a cache folder the first time (the real-client tests drive
# them), then runs every Go test with the race detector.
# Fuzz targets run their seed corpora here; see README for longer fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm_cached DIR PACKAGE@VERSION WANT: installs PACKAGE into DIR unless DIR/WANT
# exists (once per version), and reports whether it is there.
npm_cached() {
  local dir=$1 pkg=$2 want=$3
  if [ ! -e "$dir/$want" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "npm not found: the tests that drive $pkg will be skipped" >&2
      return 1
    fi
    echo "installing $pkg into $dir" >&2
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "$pkg" >&2
  fi
  [ -e "$dir/$want" ]
}

cache=${HEADROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}

CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.332}
cc="$cache/claude-code-$CLAUDE_CODE_VERSION"
if [ -z "${HEADROOM_CLAUDE:-}" ] &&
  npm_cached "$cc" "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" node_modules/.bin/claude; then
  export HEADROOM_CLAUDE="$cc/node_modules/.bin/claude"
  export HEADROOM_CLAUDE_VERSION="$CLAUDE_CODE_VERSION" # checked by internal/claudecodetest
fi

# The JavaScript AWS SDK v3 (its default request handler speaks HTTP/2),
# for the h2c test against the emulator and the gateway.
AWS_SDK_JS_VERSION=${AWS_SDK_JS_VERSION:-3.1178.0}
js="$cache/aws-sdk-js-$AWS_SDK_JS_VERSION"
if [ -z "${HEADROOM_AWS_SDK_JS:-}" ] &&
  npm_cached "$js" "@aws-sdk/client-bedrock-runtime@$AWS_SDK_JS_VERSION" node_modules/@aws-sdk/client-bedrock-runtime; then
  export HEADROOM_AWS_SDK_JS="$js/node_modules"
fi

go test -race -count=1 -timeout 15m "$@" ./...
