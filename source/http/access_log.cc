#include "source/http/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace corral::http {
namespace {

absl::StatusOr<std::vector<std::string>> splitFormat(const std::string& format) {
  // Alternating literal / operator tokens; operators keep their % delimiters stripped.
  std::vector<std::string> tokens;
  size_t i = 0;
  std::string literal;
  while (i < format.size()) {
    if (format[i] != '%') {
      literal += format[i++];
      continue;
    }
    const size_t end = format.find('%', i + 1);
    if (end == std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("unterminated command operator at offset {} in \"{}\"", i, format));
    }
    if (end == i + 1) {  // "%%" is a literal percent sign
      literal += '%';
      i = end + 1;
      continue;
    }
    tokens.push_back(literal);
    literal.clear();
    tokens.push_back(format.substr(i + 1, end - i - 1));
    i = end + 1;
  }
  tokens.push_back(literal);
  return tokens;
}

std::string headerValue(const HeaderMap* headers, const std::string& name) {
  if (headers == nullptr) {
    return {};
  }
  const std::string* v = headers->get(name);
  return v ? *v : std::string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLogger>> AccessLogger::create(const config::AccessLog& config,
                                                                   const std::string& yaml_path) {
  const std::string format = config.format.empty() ? kDefaultFormat : config.format;
  auto tokens = splitFormat(format);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", yaml_path, std::string(tokens.status().message())));
  }
  std::vector<Piece> pieces;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string& t = (*tokens)[i];
    if (i % 2 == 0) {
      if (!t.empty()) {
        pieces.push_back({Piece::Kind::Literal, t, ""});
      }
      continue;
    }
    using K = Piece::Kind;
    static const std::pair<const char*, K> kSimple[] = {
        {"START_TIME", K::StartTime},
        {"PROTOCOL", K::Protocol},
        {"RESPONSE_CODE", K::ResponseCode},
        {"RESPONSE_FLAGS", K::ResponseFlags},
        {"RESPONSE_CODE_DETAILS", K::ResponseCodeDetails},
        {"BYTES_RECEIVED", K::BytesReceived},
        {"BYTES_SENT", K::BytesSent},
        {"DURATION", K::Duration},
        {"UPSTREAM_HOST", K::UpstreamHost},
        {"UPSTREAM_CLUSTER", K::UpstreamCluster},
        {"ROUTE_NAME", K::RouteName},
        {"DOWNSTREAM_REMOTE_ADDRESS", K::DownstreamRemote},
        {"DOWNSTREAM_LOCAL_ADDRESS", K::DownstreamLocal},
    };
    bool found = false;
    for (const auto& [name, kind] : kSimple) {
      if (t == name) {
        pieces.push_back({kind, "", ""});
        found = true;
        break;
      }
    }
    if (found) {
      continue;
    }
    const bool req = t.rfind("REQ(", 0) == 0;
    const bool resp = t.rfind("RESP(", 0) == 0;
    if ((req || resp) && t.back() == ')') {
      const size_t open = t.find('(');
      std::string arg = toLower(t.substr(open + 1, t.size() - open - 2));
      std::string fallback;
      if (const size_t q = arg.find('?'); q != std::string::npos) {
        fallback = arg.substr(q + 1);
        arg = arg.substr(0, q);
      }
      // Envoy spells the pseudo-headers without ':' in ?-fallbacks too: "X?:PATH".
      pieces.push_back({req ? K::Req : K::Resp, arg, fallback});
      continue;
    }
    return absl::InvalidArgumentError(
        fmt::format("{}: unknown command operator %{}% in the access log format", yaml_path, t));
  }
  int fd = STDOUT_FILENO;
  bool owns = false;
  if (config.sink == config::AccessLog::Sink::Stderr) {
    fd = STDERR_FILENO;
  } else if (config.sink == config::AccessLog::Sink::File) {
    fd = ::open(config.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::InvalidArgumentError(fmt::format("{}.path: cannot open \"{}\": {}", yaml_path,
                                                    config.path, std::strerror(errno)));
    }
    owns = true;
  }
  return std::unique_ptr<AccessLogger>(new AccessLogger(fd, owns, std::move(pieces)));
}

AccessLogger::~AccessLogger() {
  if (owns_fd_) {
    ::close(fd_);
  }
}

std::string AccessLogger::format(const HeaderMap* request, const HeaderMap* response,
                                 const StreamInfo& info) const {
  std::string out;
  auto orDash = [&](const std::string& v) { out += v.empty() ? "-" : v; };
  for (const auto& p : pieces_) {
    using K = Piece::Kind;
    switch (p.kind) {
    case K::Literal:
      out += p.text;
      break;
    case K::StartTime: {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          info.start_time.time_since_epoch()) %
                      1000;
      out += fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                         std::chrono::time_point_cast<std::chrono::seconds>(info.start_time),
                         static_cast<int>(ms.count()));
      break;
    }
    case K::Req:
    case K::Resp: {
      const HeaderMap* h = p.kind == K::Req ? request : response;
      std::string v = headerValue(h, p.text);
      if (v.empty() && !p.fallback.empty()) {
        v = headerValue(h, p.fallback);
      }
      orDash(v);
      break;
    }
    case K::Protocol:
      out += fmt::format("HTTP/1.{}", info.protocol_minor);
      break;
    case K::ResponseCode:
      out += info.response_code ? std::to_string(*info.response_code) : "0";
      break;
    case K::ResponseFlags:
      orDash(info.response_flags);
      break;
    case K::ResponseCodeDetails:
      orDash(info.response_code_details);
      break;
    case K::BytesReceived:
      out += std::to_string(info.bytes_received);
      break;
    case K::BytesSent:
      out += std::to_string(info.bytes_sent);
      break;
    case K::Duration:
      out += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - info.start_steady)
                                .count());
      break;
    case K::UpstreamHost:
      orDash(info.upstream_host);
      break;
    case K::UpstreamCluster:
      orDash(info.upstream_cluster);
      break;
    case K::RouteName:
      orDash(info.route_name);
      break;
    case K::DownstreamRemote:
      orDash(info.downstream_remote_address);
      break;
    case K::DownstreamLocal:
      orDash(info.downstream_local_address);
      break;
    }
  }
  return out;
}

void AccessLogger::log(const HeaderMap* request, const HeaderMap* response,
                       const StreamInfo& info) const {
  const std::string line = format(request, response, info);
  // One write per line; a short write on a full pipe loses the rest of that line only.
  [[maybe_unused]] ssize_t n = ::write(fd_, line.data(), line.size());
}

}  // namespace corral::http
