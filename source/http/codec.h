#pragma once
// HTTP/1.1 wire codec on Node's http-parser (Debian's libhttp-parser).
//
// Debian builds that library with HTTP_PARSER_STRICT=0, which lets through spaces in header
// names, control bytes in the target, obs-fold, and any two bytes after chunk data. The Parser
// adds those checks itself (token names, visible-ASCII targets, a scan of the header block for
// folds and bare CRs, the CRLF after each chunk's data).
//
// The parsers turn bytes into header maps (with pseudo-headers), body chunks, trailers and a
// message-complete event; they enforce the header-block limits and report malformed input as a
// CodecError carrying the status Envoy would answer (400, 431, ...). The encoders write heads
// and chunk framing. Not thread-safe; one parser per connection.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <http_parser.h>

#include "source/http/header_map.h"

namespace corral::http {

struct CodecError {
  uint32_t status;      // the HTTP status to answer with (downstream) or 502/503 (upstream)
  std::string details;  // short reason, e.g. "http1.codec_error"
};

class MessageCallbacks {
public:
  virtual ~MessageCallbacks() = default;
  // end_stream: the message has no body (and no trailers).
  virtual void onHeaders(HeaderMapPtr headers, bool end_stream) = 0;
  virtual void onBody(std::string_view data) = 0;
  virtual void onTrailers(HeaderMapPtr trailers) = 0;
  // End of the message. If the headers said end_stream, only this follows.
  virtual void onMessageComplete() = 0;
};

struct ParserLimits {
  size_t max_header_bytes = 60 * 1024;
  size_t max_headers = 100;
};

class Parser {
public:
  enum class Type { Request, Response };
  Parser(Type type, MessageCallbacks& callbacks, ParserLimits limits = {});

  // Parses up to `len` bytes. Parsing stops after each complete message (so pipelined requests
  // are taken one at a time): call resume() before feeding the rest. Returns the bytes consumed,
  // or an error.
  struct Result {
    size_t consumed = 0;
    std::optional<CodecError> error;
  };
  Result feed(const char* data, size_t len);
  // Tells a response parser that the peer closed: completes a close-delimited body.
  Result feedEof();
  void resume();
  bool paused() const { return paused_; }

  // Response parser: the request was HEAD, so the response has no body whatever it says.
  void setHeadRequest(bool head) { head_request_ = head; }
  // After onHeaders/onMessageComplete: whether the connection may carry another message.
  bool keepAlive() const { return http_should_keep_alive(&parser_) != 0; }
  uint16_t httpMinor() const { return parser_.http_minor; }
  // True while inside a message (headers started, message not complete).
  bool midMessage() const { return in_message_; }

private:
  static int onMessageBegin(http_parser* p);
  static int onUrl(http_parser* p, const char* at, size_t len);
  static int onStatus(http_parser* p, const char* at, size_t len);
  static int onHeaderField(http_parser* p, const char* at, size_t len);
  static int onHeaderValue(http_parser* p, const char* at, size_t len);
  static int onHeadersComplete(http_parser* p);
  static int onBodyCb(http_parser* p, const char* at, size_t len);
  static int onMessageCompleteCb(http_parser* p);
  static const http_parser_settings& settings();

  bool countHeaderBytes(size_t n);
  size_t fieldCount() const;
  // Scans header-block bytes for a bad start line, obs-fold and bare CR; false on one.
  bool scanHeaderBlock(const char* data, size_t len);
  bool checkStartLine() const;
  // Checks the bytes that must follow a chunk's data ("\r\n") as they arrive.
  bool checkChunkCrlf(const char* data, size_t len, size_t& pos);
  void finishHeaderLine();
  int fail(uint32_t status, std::string details);
  Result errorResult(size_t consumed);

  http_parser parser_;
  Type type_;
  MessageCallbacks& callbacks_;
  ParserLimits limits_;
  HeaderMapPtr headers_;
  std::string url_;
  std::string field_;
  std::string value_;
  bool last_was_value_ = false;
  bool headers_done_ = false;
  bool in_message_ = false;
  bool paused_ = false;
  bool head_request_ = false;
  size_t header_bytes_ = 0;
  std::optional<CodecError> error_;
  // Header-block scanner state (requests).
  bool scanning_headers_ = true;
  size_t scan_line_len_ = 0;
  size_t scan_lines_ = 0;
  char scan_prev_ = '\n';
  std::string start_line_;
  // Bytes of "\r\n" still expected after a chunk's data (0, 1 or 2), and where the current
  // feed() buffer ends, for the body callback's look-ahead.
  int chunk_crlf_pending_ = 0;
  const char* feed_end_ = nullptr;
};

// Canonical reason phrase for a status code ("Not Found"), or "Unknown".
std::string_view reasonPhrase(uint32_t status);

// What may go on the wire (RFC 9110): a field name is a non-empty token; a field value has no
// CR, LF, NUL or other control characters except HTAB; a request target has no whitespace or
// control characters. For header fields set by code we do not trust (plugins).
bool isValidFieldName(std::string_view name);
bool isValidFieldValue(std::string_view value);
bool isValidRequestTarget(std::string_view target);

// Appends "METHOD path HTTP/1.1\r\n" and the non-pseudo headers, plus Host from :authority.
void encodeRequestHead(std::string& out, const HeaderMap& headers);
// Appends "HTTP/1.1 NNN Reason\r\n" and the non-pseudo headers.
void encodeResponseHead(std::string& out, const HeaderMap& headers);
// Appends one chunk in chunked framing (nothing for an empty chunk).
void encodeChunk(std::string& out, std::string_view data);
// Appends the last chunk and trailers (if any).
void encodeLastChunk(std::string& out, const HeaderMap* trailers);

}  // namespace corral::http
