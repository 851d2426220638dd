#include "source/http/codec.h"

#include <cstring>

#include <fmt/format.h>

namespace corral::http {

namespace {
Parser* self(http_parser* p) {
  return static_cast<Parser*>(p->data);
}

constexpr size_t kRequestPseudoHeaders = 4;
constexpr size_t kResponsePseudoHeaders = 1;

// RFC 9110 tchar.
bool isTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9')
    return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
    return true;
  switch (c) {
  case '!':
  case '#':
  case '$':
  case '%':
  case '&':
  case '\'':
  case '*':
  case '+':
  case '-':
  case '.':
  case '^':
  case '_':
  case '`':
  case '|':
  case '~':
    return true;
  default:
    return false;
  }
}

bool validTarget(std::string_view v) {
  for (unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f) {
      return false;
    }
  }
  return !v.empty();
}

bool validHeaderValue(std::string_view v) {
  // RFC 9110 field-value: VCHAR, obs-text, SP, HTAB. http-parser lets some CTLs through.
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}
}  // namespace

bool isValidFieldName(std::string_view name) {
  for (unsigned char c : name) {
    if (!isTokenChar(c)) {
      return false;
    }
  }
  return !name.empty();
}

bool isValidFieldValue(std::string_view value) {
  return validHeaderValue(value);
}

bool isValidRequestTarget(std::string_view target) {
  return validTarget(target);
}

Parser::Parser(Type type, MessageCallbacks& callbacks, ParserLimits limits)
    : type_(type), callbacks_(callbacks), limits_(limits) {
  http_parser_init(&parser_, type == Type::Request ? HTTP_REQUEST : HTTP_RESPONSE);
  parser_.data = this;
}

const http_parser_settings& Parser::settings() {
  static const http_parser_settings s = [] {
    http_parser_settings st;
    http_parser_settings_init(&st);
    st.on_message_begin = &Parser::onMessageBegin;
    st.on_url = &Parser::onUrl;
    st.on_status = &Parser::onStatus;
    st.on_header_field = &Parser::onHeaderField;
    st.on_header_value = &Parser::onHeaderValue;
    st.on_headers_complete = &Parser::onHeadersComplete;
    st.on_body = &Parser::onBodyCb;
    st.on_message_complete = &Parser::onMessageCompleteCb;
    return st;
  }();
  return s;
}

int Parser::fail(uint32_t status, std::string details) {
  if (!error_) {
    error_ = CodecError{status, std::move(details)};
  }
  return -1;
}

Parser::Result Parser::errorResult(size_t consumed) {
  Result r;
  r.consumed = consumed;
  if (!error_) {
    const auto err = static_cast<http_errno>(parser_.http_errno);
    if (err == HPE_HEADER_OVERFLOW) {
      error_ = CodecError{431, "http1.headers_too_large"};
    } else if (type_ == Type::Response) {
      error_ = CodecError{502, fmt::format("upstream_codec_error:{}", http_errno_name(err))};
    } else {
      error_ = CodecError{400, fmt::format("http1.codec_error:{}", http_errno_name(err))};
    }
  }
  r.error = error_;
  return r;
}

bool Parser::checkStartLine() const {
  // The lax build does not check the letters of "HTTP/"; the version digits it does check.
  std::string_view line = start_line_;
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (type_ == Type::Request) {
    return line.size() > 9 && line.substr(line.size() - 9, 6) == " HTTP/";
  }
  return line.rfind("HTTP/", 0) == 0;
}

bool Parser::scanHeaderBlock(const char* data, size_t len) {
  // Line by line with memchr: the common case is a handful of vectorised scans per request.
  size_t i = 0;
  while (i < len && scanning_headers_) {
    if (scan_prev_ == '\n' && (data[i] == ' ' || data[i] == '\t') && scan_lines_ > 0) {
      return false;  // obs-fold, or whitespace before the first field
    }
    if (scan_prev_ == '\r' && data[i] != '\n') {
      return false;  // bare CR (split across reads)
    }
    const char* nl = static_cast<const char*>(std::memchr(data + i, '\n', len - i));
    const size_t end = nl != nullptr ? static_cast<size_t>(nl - data) : len;
    // Bytes of this line in this buffer, without the LF.
    std::string_view part(data + i, end - i);
    const size_t cr = part.find('\r');
    if (cr != std::string_view::npos && cr + 1 < part.size()) {
      return false;  // a CR inside a line
    }
    if (scan_lines_ == 0) {
      for (char ch : part) {
        if (start_line_.empty() && ch == '\r') {
          continue;
        }
        // Keep the first 16 and the last 16 bytes of the start line: enough for both checks.
        if (start_line_.size() >= 32) {
          start_line_.erase(16, 1);
        }
        start_line_.push_back(ch);
      }
    }
    const size_t content = part.size() - (cr != std::string_view::npos ? 1 : 0);
    scan_line_len_ += content;
    if (nl == nullptr) {
      scan_prev_ = part.empty() ? scan_prev_ : part.back();
      return true;
    }
    if (scan_line_len_ == 0 && scan_lines_ > 0) {
      scanning_headers_ = false;  // the empty line ending the header block
    } else if (scan_line_len_ > 0) {
      if (scan_lines_ == 0 && !checkStartLine()) {
        return false;
      }
      ++scan_lines_;
    }
    scan_line_len_ = 0;
    scan_prev_ = '\n';
    i = end + 1;
  }
  return true;
}

bool Parser::checkChunkCrlf(const char* data, size_t len, size_t& pos) {
  while (chunk_crlf_pending_ > 0 && pos < len) {
    const char want = chunk_crlf_pending_ == 2 ? '\r' : '\n';
    if (data[pos] != want) {
      return false;
    }
    --chunk_crlf_pending_;
    ++pos;
  }
  return true;
}

Parser::Result Parser::feed(const char* data, size_t len) {
  if (error_) {
    return errorResult(0);
  }
  if (scanning_headers_ && !scanHeaderBlock(data, len)) {
    return Result{0, type_ == Type::Request ? CodecError{400, "http1.invalid_header_block"}
                                            : CodecError{502, "upstream_invalid_header_block"}};
  }
  // The CRLF after a chunk's data that the last buffer ended before.
  size_t checked = 0;
  if (!checkChunkCrlf(data, len, checked)) {
    return Result{0, CodecError{400, "http1.invalid_chunk_framing"}};
  }
  feed_end_ = data + len;
  const size_t n = http_parser_execute(&parser_, &settings(), data, len);
  const auto err = static_cast<http_errno>(parser_.http_errno);
  if (err == HPE_PAUSED) {
    return Result{n, std::nullopt};
  }
  if (err != HPE_OK || error_) {
    return errorResult(n);
  }
  if (n != len && !paused_) {
    // An upgrade the callbacks did not refuse stops the parser; the caller refuses upgrades.
    return Result{n, CodecError{400, "http1.unexpected_data"}};
  }
  return Result{n, std::nullopt};
}

Parser::Result Parser::feedEof() {
  if (error_) {
    return errorResult(0);
  }
  http_parser_execute(&parser_, &settings(), nullptr, 0);
  const auto err = static_cast<http_errno>(parser_.http_errno);
  if ((err != HPE_OK && err != HPE_PAUSED) || error_) {
    return errorResult(0);
  }
  return Result{0, std::nullopt};
}

void Parser::resume() {
  if (paused_) {
    paused_ = false;
    http_parser_pause(&parser_, 0);
  }
}

size_t Parser::fieldCount() const {
  if (!headers_) {
    return 0;
  }
  // Trailer maps (after the header block) have no pseudo-headers.
  const size_t pseudo = headers_done_            ? 0
                        : type_ == Type::Request ? kRequestPseudoHeaders
                                                 : kResponsePseudoHeaders;
  return headers_->size() - pseudo;
}

bool Parser::countHeaderBytes(size_t n) {
  header_bytes_ += n;
  return header_bytes_ <= limits_.max_header_bytes;
}

int Parser::onMessageBegin(http_parser* p) {
  Parser* s = self(p);
  s->chunk_crlf_pending_ = 0;
  s->headers_ = std::make_unique<HeaderMap>();
  auto& e = s->headers_->entries();
  // Pseudo-headers go first, as in Envoy's header maps; their values are filled in when the
  // header block is complete (inserting at the front later would move every field).
  if (s->type_ == Type::Request) {
    e.push_back({":method", ""});
    e.push_back({":scheme", "http"});
    e.push_back({":authority", ""});
    e.push_back({":path", ""});
  } else {
    e.push_back({":status", ""});
  }
  s->url_.clear();
  s->field_.clear();
  s->value_.clear();
  s->last_was_value_ = false;
  s->headers_done_ = false;
  s->in_message_ = true;
  s->header_bytes_ = 0;
  return 0;
}

int Parser::onUrl(http_parser* p, const char* at, size_t len) {
  Parser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return s->fail(431, "http1.headers_too_large");
  }
  s->url_.append(at, len);
  return 0;
}

int Parser::onStatus(http_parser* p, const char*, size_t len) {
  Parser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return s->fail(502, "upstream_headers_too_large");
  }
  return 0;
}

void Parser::finishHeaderLine() {
  if (field_.empty()) {
    return;
  }
  for (char& ch : field_) {
    if (ch >= 'A' && ch <= 'Z') {
      ch = static_cast<char>(ch - 'A' + 'a');
    }
  }
  headers_->entries().push_back({std::move(field_), std::move(value_)});
  field_.clear();
  value_.clear();
}

int Parser::onHeaderField(http_parser* p, const char* at, size_t len) {
  Parser* s = self(p);
  if (s->last_was_value_) {
    if (!validHeaderValue(s->value_)) {
      return s->fail(s->type_ == Type::Request ? 400 : 502, "http1.invalid_characters");
    }
    s->finishHeaderLine();
    s->last_was_value_ = false;
    if (s->fieldCount() >= s->limits_.max_headers) {
      return s->fail(s->type_ == Type::Request ? 431 : 502, "http1.too_many_headers");
    }
  }
  if (!s->headers_) {
    s->headers_ = std::make_unique<HeaderMap>();  // trailers after a chunked body
  }
  for (size_t i = 0; i < len; ++i) {
    if (!isTokenChar(static_cast<unsigned char>(at[i]))) {
      return s->fail(s->type_ == Type::Request ? 400 : 502, "http1.invalid_header_name");
    }
  }
  if (!s->countHeaderBytes(len + 4)) {  // ": " and CRLF count too, roughly
    return s->fail(s->type_ == Type::Request ? 431 : 502, "http1.headers_too_large");
  }
  s->field_.append(at, len);
  return 0;
}

int Parser::onHeaderValue(http_parser* p, const char* at, size_t len) {
  Parser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return s->fail(s->type_ == Type::Request ? 431 : 502, "http1.headers_too_large");
  }
  s->value_.append(at, len);
  s->last_was_value_ = true;
  return 0;
}

int Parser::onHeadersComplete(http_parser* p) {
  Parser* s = self(p);
  if (s->last_was_value_) {
    if (!validHeaderValue(s->value_)) {
      return s->fail(s->type_ == Type::Request ? 400 : 502, "http1.invalid_characters");
    }
    s->finishHeaderLine();
    s->last_was_value_ = false;
  }
  if (s->fieldCount() > s->limits_.max_headers) {
    return s->fail(s->type_ == Type::Request ? 431 : 502, "http1.too_many_headers");
  }
  s->headers_done_ = true;
  HeaderMap& h = *s->headers_;
  bool end_stream;
  if (s->type_ == Type::Request) {
    if (p->http_major != 1) {
      return s->fail(400, "http1.unsupported_version");
    }
    if (p->upgrade) {
      // Only h2c is dropped silently (curl tries it); other upgrades and CONNECT are refused by
      // the caller, which sees the upgrade header still present.
      const std::string* up = h.get("upgrade");
      if (p->method != HTTP_CONNECT && up != nullptr && equalsIgnoreCase(*up, "h2c")) {
        h.remove("upgrade");
        h.remove("http2-settings");
        p->upgrade = 0;
      } else {
        return s->fail(403, "upgrade_not_supported");
      }
    }
    if (p->method == HTTP_CONNECT) {
      return s->fail(403, "upgrade_not_supported");
    }
    if (!validTarget(s->url_)) {
      return s->fail(400, "http1.invalid_url");
    }
    // Move Host into :authority and split an absolute-form target, as Envoy does.
    std::string path = std::move(s->url_);
    std::string authority;
    if (!path.empty() && path[0] != '/' && path != "*") {
      http_parser_url u;
      http_parser_url_init(&u);
      if (http_parser_parse_url(path.data(), path.size(), 0, &u) != 0 ||
          (u.field_set & (1 << UF_HOST)) == 0) {
        return s->fail(400, "http1.invalid_url");
      }
      authority = path.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
      if ((u.field_set & (1 << UF_PORT)) != 0) {
        authority += ":" + path.substr(u.field_data[UF_PORT].off, u.field_data[UF_PORT].len);
      }
      std::string rest = (u.field_set & (1 << UF_PATH)) != 0
                             ? path.substr(u.field_data[UF_PATH].off)
                             : "/" + ((u.field_set & (1 << UF_QUERY)) != 0
                                          ? "?" + path.substr(u.field_data[UF_QUERY].off)
                                          : std::string());
      path = std::move(rest);
    }
    auto& e = h.entries();
    size_t host_index = 0;
    size_t hosts = 0;
    for (size_t i = kRequestPseudoHeaders; i < e.size(); ++i) {
      if (e[i].key == "host") {
        host_index = i;
        ++hosts;
      }
    }
    if (hosts > 1) {
      return s->fail(400, "http1.multiple_host");
    }
    if (authority.empty() && hosts == 1) {
      authority = std::move(e[host_index].value);
    }
    if (authority.empty() && p->http_minor >= 1) {
      return s->fail(400, "http1.missing_host");
    }
    if (hosts == 1) {
      e.erase(e.begin() + static_cast<std::ptrdiff_t>(host_index));
    }
    e[0].value = http_method_str(static_cast<http_method>(p->method));
    e[2].value = std::move(authority);
    e[3].value = std::move(path);
    // Content-Length + Transfer-Encoding, or two different Content-Lengths: http-parser already
    // refuses those (HPE_UNEXPECTED_CONTENT_LENGTH). A Transfer-Encoding other than chunked is
    // refused here: we could not find the body's end.
    if (const std::string* te = h.get("transfer-encoding");
        te != nullptr && !(p->flags & F_CHUNKED)) {
      return s->fail(501, "http1.invalid_transfer_encoding");
    }
    end_stream =
        !(p->flags & F_CHUNKED) && (p->content_length == 0 || p->content_length == ULLONG_MAX);
  } else {
    const uint32_t status = p->status_code;
    if (status >= 100 && status < 200) {
      if (status == 101) {
        return s->fail(502, "upstream_unexpected_upgrade");
      }
      return 0;  // interim response: dropped, its message-complete is ignored
    }
    h.entries()[0].value = std::to_string(status);
    end_stream = s->head_request_ || status == 204 || status == 304 ||
                 (!(p->flags & F_CHUNKED) && p->content_length == 0);
  }
  s->callbacks_.onHeaders(std::move(s->headers_), end_stream);
  // For a HEAD response, tell http-parser there is no body.
  return (s->type_ == Type::Response && s->head_request_) ? 1 : 0;
}

int Parser::onBodyCb(http_parser* p, const char* at, size_t len) {
  Parser* s = self(p);
  if ((p->flags & F_CHUNKED) != 0 && p->content_length == 0) {
    // This chunk's data is complete: "\r\n" must follow (the lax build does not check).
    s->chunk_crlf_pending_ = 2;
    size_t pos = static_cast<size_t>((at + len) - at);
    const size_t avail = static_cast<size_t>(s->feed_end_ - at);
    if (!s->checkChunkCrlf(at, avail, pos)) {
      return s->fail(s->type_ == Type::Request ? 400 : 502, "http1.invalid_chunk_framing");
    }
  }
  s->callbacks_.onBody(std::string_view(at, len));
  return 0;
}

int Parser::onMessageCompleteCb(http_parser* p) {
  Parser* s = self(p);
  if (s->type_ == Type::Response && p->status_code >= 100 && p->status_code < 200) {
    s->in_message_ = false;
    s->scanning_headers_ = true;  // the final response has its own header block
    s->scan_line_len_ = 0;
    s->scan_lines_ = 0;
    s->scan_prev_ = '\n';
    s->start_line_.clear();
    return 0;
  }
  if (!s->headers_done_) {
    return s->fail(400, "http1.codec_error");
  }
  if (s->headers_) {
    // Trailers came after a chunked body.
    if (s->last_was_value_) {
      if (!validHeaderValue(s->value_)) {
        return s->fail(s->type_ == Type::Request ? 400 : 502, "http1.invalid_characters");
      }
      s->finishHeaderLine();
      s->last_was_value_ = false;
    }
    if (s->headers_->size() > 0) {
      s->callbacks_.onTrailers(std::move(s->headers_));
    }
    s->headers_.reset();
  }
  s->in_message_ = false;
  s->scanning_headers_ = true;  // the next message starts with a header block
  s->scan_line_len_ = 0;
  s->scan_lines_ = 0;
  s->scan_prev_ = '\n';
  s->start_line_.clear();
  s->paused_ = true;
  http_parser_pause(p, 1);
  s->callbacks_.onMessageComplete();
  return 0;
}

std::string_view reasonPhrase(uint32_t status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

namespace {
void appendFields(std::string& out, const HeaderMap& headers) {
  for (const auto& e : headers.entries()) {
    if (!e.key.empty() && e.key[0] == ':') {
      continue;
    }
    out += e.key;
    out += ": ";
    out += e.value;
    out += "\r\n";
  }
}
}  // namespace

void encodeRequestHead(std::string& out, const HeaderMap& headers) {
  out += headers.getView(":method");
  out += ' ';
  out += headers.getView(":path");
  out += " HTTP/1.1\r\nhost: ";
  out += headers.getView(":authority");
  out += "\r\n";
  appendFields(out, headers);
  out += "\r\n";
}

void encodeResponseHead(std::string& out, const HeaderMap& headers) {
  const std::string_view status = headers.getView(":status");
  uint32_t code = 0;
  for (char c : status) {
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  out += "HTTP/1.1 ";
  out += status;
  out += ' ';
  out += reasonPhrase(code);
  out += "\r\n";
  appendFields(out, headers);
  out += "\r\n";
}

void encodeChunk(std::string& out, std::string_view data) {
  if (data.empty()) {
    return;
  }
  out += fmt::format("{:x}\r\n", data.size());
  out += data;
  out += "\r\n";
}

void encodeLastChunk(std::string& out, const HeaderMap* trailers) {
  out += "0\r\n";
  if (trailers != nullptr) {
    appendFields(out, *trailers);
  }
  out += "\r\n";
}

}  // namespace corral::http
