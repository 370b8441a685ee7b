#!/usr/bin/env bash
# Regenerates Sources/APIMessages from Protos/*.proto. Not part of the build or CI: the generated
# files are committed, so a build needs neither protoc nor the plugin. Run it after editing a .proto.
#
# Needs: protoc (Debian: protobuf-compiler) and protoc-gen-swift of the swift-protobuf version in
# Package.swift, e.g. built once with
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
# and named by PROTOC_GEN_SWIFT (default: protoc-gen-swift on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
[ -x "$plugin" ] || { echo "generate-protos: set PROTOC_GEN_SWIFT to a protoc-gen-swift binary" >&2; exit 1; }
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=Protos \
    --swift_out=Sources/APIMessages --swift_opt=Visibility=Public \
    Protos/*.proto
echo "generated: $(ls Sources/APIMessages)"
