// GetProperty for the Golang filter: Envoy's attribute names (the CEL "request.*", "response.*",
// "source.*", "destination.*", "connection.*", "upstream.*" and "xds.*" paths) that corral can
// answer, as the strings Envoy's serializer would produce. Anything else is "not found".

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>

#include "source/golang/golang_filter.h"

namespace corral::golang {
namespace {

// "1.2.3.4:80" -> ("1.2.3.4", "80"); "[::1]:80" -> ("::1", "80").
std::pair<std::string, std::string> splitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return {address, ""};
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, address.substr(colon + 1)};
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06d}Z", std::chrono::floor<std::chrono::seconds>(t),
                     micros);
}

}  // namespace

std::string GolangFilter::property(std::string_view path, bool* found) {
  *found = true;
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  const http::HeaderMap* rq = request_headers_;
  auto header = [&](std::string_view name) -> std::string {
    const std::string* v = rq ? rq->get(name) : nullptr;
    if (v == nullptr) {
      *found = false;
      return {};
    }
    return *v;
  };
  if (path == "request.path") {
    return header(":path");
  }
  if (path == "request.url_path") {
    std::string p = header(":path");
    return p.substr(0, p.find('?'));
  }
  if (path == "request.query") {
    std::string p = header(":path");
    const size_t q = p.find('?');
    return q == std::string::npos ? std::string() : p.substr(q + 1);
  }
  if (path == "request.host") {
    return header(":authority");
  }
  if (path == "request.scheme") {
    return header(":scheme");
  }
  if (path == "request.method") {
    return header(":method");
  }
  if (path == "request.referer") {
    return header("referer");
  }
  if (path == "request.useragent") {
    return header("user-agent");
  }
  if (path == "request.id") {
    return header("x-request-id");
  }
  if (path == "request.protocol") {
    return info.protocol_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }
  if (path == "request.time") {
    return rfc3339(info.start_time);
  }
  if (path == "request.size") {
    return std::to_string(info.bytes_received);
  }
  if (path == "request.total_size") {
    return std::to_string(info.bytes_received + (rq ? rq->byteSize() : 0));
  }
  if (path == "response.code") {
    if (!info.response_code) {
      *found = false;
      return {};
    }
    return std::to_string(*info.response_code);
  }
  if (path == "response.code_details") {
    *found = !info.response_code_details.empty();
    return info.response_code_details;
  }
  if (path == "response.flags") {
    return info.response_flags.empty() ? "-" : info.response_flags;
  }
  if (path == "response.size") {
    return std::to_string(info.bytes_sent);
  }
  if (path == "source.address") {
    return info.downstream_remote_address;
  }
  if (path == "source.port") {
    return splitAddress(info.downstream_remote_address).second;
  }
  if (path == "destination.address") {
    return info.downstream_local_address;
  }
  if (path == "destination.port") {
    return splitAddress(info.downstream_local_address).second;
  }
  if (path == "connection.mtls") {
    return "false";
  }
  if (path == "upstream.address") {
    *found = !info.upstream_host.empty();
    return info.upstream_host;
  }
  if (path == "upstream.port") {
    *found = !info.upstream_host.empty();
    return splitAddress(info.upstream_host).second;
  }
  if (path == "xds.route_name") {
    return info.route_name;
  }
  if (path == "xds.cluster_name") {
    *found = !info.upstream_cluster.empty();
    return info.upstream_cluster;
  }
  if (path == "xds.filter_chain_name") {
    return "";
  }
  if (path == "xds.virtual_host_name") {
    auto route = decoder_callbacks_->route();
    if (!route || route->virtual_host == nullptr) {
      *found = false;
      return {};
    }
    return route->virtual_host->name;
  }
  *found = false;
  return {};
}

}  // namespace corral::golang
