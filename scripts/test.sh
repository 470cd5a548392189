#!/usr/bin/env bash
# Runs Headroom's whole test suite, the one command the README gives.
# It installs Claude Code and the JavaScript AWS SDK's Bedrock Runtime client
# from npm into a cache folder the first time (the real-client tests drive
# them), then runs every Go test with the race detector.
# Fuzz targets run their seed corpora here; see README for longer fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.332}
cache=${HEADROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}
cc="$cache/claude-code-$CLAUDE_CODE_VERSION"
if [ -z "${HEADROOM_CLAUDE:-}" ]; then
  if [ ! -x "$cc/node_modules/.bin/claude" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "installing Claude Code $CLAUDE_CODE_VERSION into $cc" >&2
      mkdir -p "$cc"
      npm install --silent --no-audit --no-fund --prefix "$cc" "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
    else
      echo "npm not found: the Claude Code tests will be skipped" >&2
    fi
  fi
  if [ -x "$cc/node_modules/.bin/claude" ]; then
    HEADROOM_CLAUDE="$cc/node_modules/.bin/claude"
    export HEADROOM_CLAUDE
  fi
fi

# The JavaScript AWS SDK v3 (its default request handler speaks HTTP/2),
# for the h2c test against the emulator and the gateway.
AWS_SDK_JS_VERSION=${AWS_SDK_JS_VERSION:-3.1178.0}
js="$cache/aws-sdk-js-$AWS_SDK_JS_VERSION"
if [ -z "${HEADROOM_AWS_SDK_JS:-}" ]; then
  if [ ! -d "$js/node_modules/@aws-sdk/client-bedrock-runtime" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "installing @aws-sdk/client-bedrock-runtime $AWS_SDK_JS_VERSION into $js" >&2
      mkdir -p "$js"
      npm install --silent --no-audit --no-fund --prefix "$js" "@aws-sdk/client-bedrock-runtime@$AWS_SDK_JS_VERSION" >&2
    else
      echo "npm not found: the JavaScript SDK test will be skipped" >&2
    fi
  fi
  if [ -d "$js/node_modules/@aws-sdk/client-bedrock-runtime" ]; then
    HEADROOM_AWS_SDK_JS="$js/node_modules"
    export HEADROOM_AWS_SDK_JS
  fi
fi

go test -race -count=1 -timeout 15m "$@" ./...
