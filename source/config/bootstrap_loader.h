#pragma once
// Envoy-style YAML → typed Bootstrap. Every error names its YAML path and line, e.g.
//   static_resources.clusters[0].lb_policy (line 31): unknown value "ROUND"; expected one of ...
// All errors found are reported, not just the first. Unknown fields are errors.

#include <string>

#include "absl/status/statusor.h"
#include "source/config/bootstrap.h"

namespace corral::config {

absl::StatusOr<Bootstrap> loadBootstrapFromString(const std::string& yaml);
absl::StatusOr<Bootstrap> loadBootstrapFromFile(const std::string& path);

}  // namespace corral::config
