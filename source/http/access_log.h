#pragma once
// Access logs in Envoy's text format with its command operators (%START_TIME%, %REQ(X?Y)%,
// %RESPONSE_CODE%, ...). Created on the main thread; log() is called from worker threads and
// writes one line with one write(2), so lines from different workers never interleave.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/config/bootstrap.h"
#include "source/http/header_map.h"
#include "source/http/stream_info.h"

namespace corral::http {

class AccessLogger {
public:
  // Errors name `yaml_path`.
  static absl::StatusOr<std::unique_ptr<AccessLogger>> create(const config::AccessLog& config,
                                                              const std::string& yaml_path);
  ~AccessLogger();

  void log(const HeaderMap* request, const HeaderMap* response, const StreamInfo& info) const;
  std::string format(const HeaderMap* request, const HeaderMap* response,
                     const StreamInfo& info) const;

  static constexpr const char* kDefaultFormat =
      "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
      "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
      "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
      "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

private:
  struct Piece {
    enum class Kind {
      Literal,
      StartTime,
      Req,
      Resp,
      Protocol,
      ResponseCode,
      ResponseFlags,
      ResponseCodeDetails,
      BytesReceived,
      BytesSent,
      Duration,
      UpstreamHost,
      UpstreamCluster,
      RouteName,
      DownstreamRemote,
      DownstreamLocal,
    };
    Kind kind;
    std::string text;      // literal, or header name
    std::string fallback;  // REQ(A?B): B
  };
  AccessLogger(int fd, bool owns_fd, std::vector<Piece> pieces)
      : fd_(fd), owns_fd_(owns_fd), pieces_(std::move(pieces)) {}

  int fd_;
  bool owns_fd_;
  std::vector<Piece> pieces_;
};
using AccessLoggerPtr = std::unique_ptr<AccessLogger>;

}  // namespace corral::http
