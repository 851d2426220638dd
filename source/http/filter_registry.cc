#include "source/http/filter_registry.h"

#include <fmt/format.h>

namespace corral::http {

void FilterRegistry::add(const std::string& name, const std::string& type_url,
                         FilterFactoryCreator creator) {
  by_name_[name] = creator;
  by_type_[type_url] = std::move(creator);
}

absl::StatusOr<FilterFactoryPtr> FilterRegistry::create(const config::HttpFilter& filter,
                                                        FilterFactoryContext& context) const {
  // Envoy selects the extension by the config's type when one is given.
  const std::string& type = filter.typed_config.type_url;
  if (!type.empty()) {
    auto it = by_type_.find(type);
    if (it == by_type_.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}.\"@type\": unsupported HTTP filter type \"{}\"", filter.typed_config.path, type));
    }
    return it->second(filter, context);
  }
  auto it = by_name_.find(filter.name);
  if (it == by_name_.end()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: unknown HTTP filter \"{}\" (and no typed_config \"@type\")",
                    filter.typed_config.path, filter.name));
  }
  return it->second(filter, context);
}

}  // namespace corral::http
