#pragma once
// The Golang filter's plugin_config: Envoy YAML (a google.protobuf.Any with an "@type") turned
// into the serialised Any bytes the Go SDK unmarshals, exactly as Envoy would produce them.
// Supported "@type"s: xds.type.v3.TypedStruct, udpa.type.v1.TypedStruct, google.protobuf.Struct,
// google.protobuf.Value, google.protobuf.StringValue. Scalars follow Envoy's YAML-to-JSON rules:
// quoted scalars are strings; unquoted true/false are booleans, null/~ is null, numbers are
// numbers, anything else is a string.

#include <string>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace corral::golang {

// `node` is the plugin_config mapping (may be undefined: an empty Any). Errors name `path`.
absl::StatusOr<std::string> serializeAnyFromYaml(const YAML::Node& node, const std::string& path);

// Dynamic metadata helpers (serialised protobuf): merges `key` = serialised google.protobuf.Value
// into the serialised google.protobuf.Struct `*target` (empty = new struct). False if `value` is
// not a valid Value.
bool mergeValueIntoStruct(std::string* target, const std::string& key, std::string_view value);

}  // namespace corral::golang
