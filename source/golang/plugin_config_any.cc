#include "source/golang/plugin_config_any.h"

#include <fmt/format.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/wire_format_lite.h>
#include <google/protobuf/wrappers.pb.h>

#include <cerrno>
#include <cstdlib>

namespace corral::golang {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kTypePrefix = "type.googleapis.com/";

absl::Status error(const std::string& path, const YAML::Node& node, std::string_view what) {
  const int line = node.IsDefined() ? node.Mark().line + 1 : 0;
  return absl::InvalidArgumentError(line > 0 ? fmt::format("{} (line {}): {}", path, line, what)
                                             : fmt::format("{}: {}", path, what));
}

// Envoy's YAML → JSON value rules for one scalar.
void scalarToValue(const YAML::Node& node, pb::Value* out) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") {  // quoted
    out->set_string_value(s);
    return;
  }
  if (s == "true" || s == "false") {
    out->set_bool_value(s == "true");
    return;
  }
  if (s == "null" || s == "~" || s.empty()) {
    out->set_null_value(pb::NULL_VALUE);
    return;
  }
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(s.c_str(), &end);
  const bool numeric = end == s.c_str() + s.size() && errno == 0 &&
                       s.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (numeric) {
    out->set_number_value(d);
  } else {
    out->set_string_value(s);
  }
}

absl::Status toValue(const YAML::Node& node, const std::string& path, pb::Value* out);

absl::Status toStruct(const YAML::Node& node, const std::string& path, pb::Struct* out) {
  if (!node.IsMap()) {
    return error(path, node, "must be a mapping");
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    auto status =
        toValue(kv.second, fmt::format("{}.{}", path, key), &(*out->mutable_fields())[key]);
    if (!status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status toValue(const YAML::Node& node, const std::string& path, pb::Value* out) {
  switch (node.Type()) {
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    out->set_null_value(pb::NULL_VALUE);
    return absl::OkStatus();
  case YAML::NodeType::Scalar:
    scalarToValue(node, out);
    return absl::OkStatus();
  case YAML::NodeType::Sequence: {
    auto* list = out->mutable_list_value();
    size_t i = 0;
    for (const auto& item : node) {
      auto status = toValue(item, fmt::format("{}[{}]", path, i++), list->add_values());
      if (!status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }
  case YAML::NodeType::Map:
    return toStruct(node, path, out->mutable_struct_value());
  }
  return error(path, node, "unsupported YAML node");
}

// Only "@type" and the listed fields may appear.
absl::Status checkFields(const YAML::Node& node, const std::string& path,
                         std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    bool ok = key == "@type";
    for (auto a : allowed) {
      ok = ok || key == a;
    }
    if (!ok) {
      return error(fmt::format("{}.{}", path, key), kv.first, "unknown field");
    }
  }
  return absl::OkStatus();
}

// TypedStruct {string type_url = 1; google.protobuf.Struct value = 2;} (xds and udpa agree).
absl::StatusOr<std::string> typedStruct(const YAML::Node& node, const std::string& path) {
  auto status = checkFields(node, path, {"type_url", "value"});
  if (!status.ok()) {
    return status;
  }
  std::string type_url;
  if (node["type_url"]) {
    type_url = node["type_url"].Scalar();
  }
  pb::Struct value;
  if (node["value"] && !node["value"].IsNull()) {
    status = toStruct(node["value"], path + ".value", &value);
    if (!status.ok()) {
      return status;
    }
  }
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    if (!type_url.empty()) {
      coded.WriteTag(pb::internal::WireFormatLite::MakeTag(
          1, pb::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint32(static_cast<uint32_t>(type_url.size()));
      coded.WriteString(type_url);
    }
    const std::string bytes = value.SerializeAsString();
    if (node["value"]) {
      coded.WriteTag(pb::internal::WireFormatLite::MakeTag(
          2, pb::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint32(static_cast<uint32_t>(bytes.size()));
      coded.WriteString(bytes);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> serializeAnyFromYaml(const YAML::Node& node, const std::string& path) {
  pb::Any any;
  if (!node.IsDefined() || node.IsNull()) {
    return any.SerializeAsString();
  }
  if (!node.IsMap()) {
    return error(path, node, "must be a mapping with an \"@type\"");
  }
  if (!node["@type"] || !node["@type"].IsScalar()) {
    return error(path, node, "missing \"@type\"");
  }
  const std::string type_url = node["@type"].Scalar();
  const std::string_view type = std::string_view(type_url).substr(
      type_url.rfind('/') == std::string::npos ? 0 : type_url.rfind('/') + 1);
  any.set_type_url(type_url.find('/') == std::string::npos ? std::string(kTypePrefix) + type_url
                                                           : type_url);
  if (type == "xds.type.v3.TypedStruct" || type == "udpa.type.v1.TypedStruct") {
    auto bytes = typedStruct(node, path);
    if (!bytes.ok()) {
      return bytes.status();
    }
    any.set_value(*bytes);
  } else if (type == "google.protobuf.Struct") {
    auto status = checkFields(node, path, {"value"});
    if (!status.ok()) {
      return status;
    }
    pb::Struct value;
    if (node["value"] && !node["value"].IsNull()) {
      status = toStruct(node["value"], path + ".value", &value);
      if (!status.ok()) {
        return status;
      }
    }
    any.set_value(value.SerializeAsString());
  } else if (type == "google.protobuf.Value") {
    auto status = checkFields(node, path, {"value"});
    if (!status.ok()) {
      return status;
    }
    pb::Value value;
    status = toValue(node["value"], path + ".value", &value);
    if (!status.ok()) {
      return status;
    }
    any.set_value(value.SerializeAsString());
  } else if (type == "google.protobuf.StringValue") {
    auto status = checkFields(node, path, {"value"});
    if (!status.ok()) {
      return status;
    }
    pb::StringValue value;
    if (node["value"]) {
      if (!node["value"].IsScalar()) {
        return error(path + ".value", node["value"], "must be a string");
      }
      value.set_value(node["value"].Scalar());
    }
    any.set_value(value.SerializeAsString());
  } else {
    return error(path + ".@type", node["@type"],
                 fmt::format("unsupported type \"{}\" (supported: xds.type.v3.TypedStruct, "
                             "udpa.type.v1.TypedStruct, google.protobuf.Struct, "
                             "google.protobuf.Value, google.protobuf.StringValue)",
                             type_url));
  }
  return any.SerializeAsString();
}

bool mergeValueIntoStruct(std::string* target, const std::string& key, std::string_view value) {
  pb::Value v;
  if (!v.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return false;
  }
  pb::Struct s;
  if (!target->empty() && !s.ParseFromString(*target)) {
    s.Clear();
  }
  (*s.mutable_fields())[key] = std::move(v);
  *target = s.SerializeAsString();
  return true;
}

}  // namespace corral::golang
