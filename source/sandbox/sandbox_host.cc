#include "source/sandbox/sandbox_host.h"

#include <sched.h>

#include <deque>

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/config/bootstrap_loader.h"
#include "source/event/fd_watch.h"
#include "source/golang/golang_filter.h"
#include "source/http/filter_manager.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/stream_messages.h"

namespace corral::sandbox {
namespace {

constexpr uint32_t kMaxEventPayload = 1 << 20;
// Body bytes per message: well inside a ring, so a message is never too large for it.
constexpr size_t kChunk = 256 * 1024;
// Checks of the ring before sleeping, with a core to ourselves (a few microseconds).
constexpr int kSpinChecks = 200;
// How often the plugin's stats are reported at most (they trail the responses by this much).
constexpr std::chrono::milliseconds kStatsInterval{5};

}  // namespace

struct SandboxHost::Link {
  std::unique_ptr<Channel> channel;
  std::optional<RingReader> in;
  std::optional<RingWriter> out;
  std::unique_ptr<event::FdWatch> watch;
  std::deque<std::pair<uint32_t, std::string>> queued;  // waiting for room in the ring
  event::TimerPtr retry;
  std::map<uint64_t, std::unique_ptr<Stream>> streams;

  void send(MessageType type, std::string payload) {
    if (queued.empty()) {
      const auto r = out->write(static_cast<uint32_t>(type), payload);
      if (r == RingWriter::Result::Ok) {
        return;
      }
      if (r != RingWriter::Result::Full) {
        // Our own message does not fit or the proxy broke the ring: nothing sane is left.
        CORRAL_LOG(critical, "sandbox: cannot write to the proxy's channel");
        std::_Exit(3);
      }
    }
    queued.emplace_back(static_cast<uint32_t>(type), std::move(payload));
    retry->enable(std::chrono::milliseconds(1));
  }
};

// The stream mirror: an ActiveStream whose owner turns what leaves the chain into actions.
class SandboxHost::Stream : public http::StreamOwner, public event::DeferredDeletable {
public:
  Stream(SandboxHost& host, Link& link, uint64_t id) : host_(host), link_(link), id_(id) {}

  // ---- http::StreamOwner: the response side of the chain ----
  event::Dispatcher& dispatcher() override { return host_.dispatcher_; }
  void writeHeaders(http::HeaderMap& headers, bool end_stream) override {
    if (!response_in) {
      // Nothing of the proxy's response came in: this is a local reply made here.
      local = true;
      local_headers = headers;
      if (end_stream) {
        sendLocalReply();
      }
      return;
    }
    passHeaders(1, headers, end_stream);
  }
  void writeData(std::string_view data, bool end_stream) override {
    if (local) {
      local_body.append(data);
      if (end_stream) {
        sendLocalReply();
      }
      return;
    }
    passData(1, data, end_stream);
  }
  void writeTrailers(const http::HeaderMap& trailers) override {
    if (local) {
      sendLocalReply();  // a local reply has no trailers
      return;
    }
    passTrailers(1, trailers);
  }
  void readDisable(bool disable) override { sendFlag(MessageType::ReadDisable, disable); }
  size_t bufferedWriteBytes() const override { return 0; }
  void onWriteDrained(std::function<void()> cb) override { host_.dispatcher_.post(std::move(cb)); }
  void onResponseComplete() override {}
  void onStreamReset(std::string_view details) override {
    syncInfo();
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    w.bytes(details);
    link_.send(MessageType::ResetStream, std::move(p));
  }

  // ---- what the sink (the request side's end) and the stream's owner pass on ----
  void passHeaders(uint8_t dir, const http::HeaderMap& headers, bool end_stream) {
    syncInfo();
    std::string fields;
    WireWriter f(fields);
    f.headers(headers);
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    w.u8(dir);
    // Most plugins leave most headers alone: then the proxy keeps its own map as it is.
    const bool unchanged = fields == received[dir];
    w.u8(unchanged ? 1 : 0);
    if (!unchanged) {
      p.append(fields);
    }
    w.u8(end_stream ? 1 : 0);
    received[dir].clear();
    link_.send(MessageType::PassHeaders, std::move(p));
  }
  // The encoded header fields the proxy sent for each direction, until they pass back.
  std::string received[2];
  void passData(uint8_t dir, std::string_view data, bool end_stream) {
    syncInfo();
    do {
      const std::string_view chunk = data.substr(0, kChunk);
      data.remove_prefix(chunk.size());
      std::string p;
      WireWriter w(p);
      w.u64(id_);
      w.u8(dir);
      w.u8(end_stream && data.empty() ? 1 : 0);
      w.bytes(chunk);
      link_.send(MessageType::PassData, std::move(p));
    } while (!data.empty());
  }
  void passTrailers(uint8_t dir, const http::HeaderMap& trailers) {
    syncInfo();
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    w.u8(dir);
    w.headers(trailers);
    link_.send(MessageType::PassTrailers, std::move(p));
  }
  void sendFlag(MessageType type, bool flag) {
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    w.u8(flag ? 1 : 0);
    link_.send(type, std::move(p));
  }

  // The plugin's changes to the stream info, if any since the last report.
  void syncInfo() {
    if (!active) {
      return;
    }
    if (reported.sameAs(active->info())) {
      return;
    }
    reported = InfoState::of(active->info());
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    writeInfoState(w, reported);
    link_.send(MessageType::InfoUpdate, std::move(p));
  }
  // Idle once the filter is out of Go for everything it was given.
  void syncIdle() {
    if (awaiting_idle && (golang == nullptr || !golang->isProcessingInGo())) {
      awaiting_idle = false;
      std::string p;
      WireWriter w(p);
      w.u64(id_);
      w.u64(events);
      link_.send(MessageType::Idle, std::move(p));
    }
  }

  std::unique_ptr<http::ActiveStream> active;
  http::StreamDecoderFilterCallbacks* sink = nullptr;  // the sink's callbacks: the response enters
  std::shared_ptr<golang::GolangFilter> golang;
  bool response_in = false;  // the proxy's response has entered the chain
  bool awaiting_idle = false;
  uint64_t events = 0;  // received for this stream
  bool local = false;
  http::HeaderMap local_headers;
  std::string local_body;
  InfoState reported;

private:
  void sendLocalReply() {
    syncInfo();
    local = false;
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    uint32_t status = 0;
    for (char c : local_headers.getView(":status")) {
      status = status * 10 + static_cast<uint32_t>(c - '0');
    }
    w.u32(status);
    local_headers.remove(":status");
    if (local_body.size() > kChunk) {
      // Too large for one message: the plugin's reply is replaced by a plain 500.
      CORRAL_LOG(err, "sandbox: a local reply body of {} bytes is over {}: answering 500",
                 local_body.size(), kChunk);
      local_headers.clear();
      local_body = "local reply too large\r\n";
      p.resize(sizeof(uint64_t));
      w.u32(500);
    }
    w.headers(local_headers);
    w.bytes(local_body);
    w.bytes(active ? active->info().response_code_details : std::string());
    link_.send(MessageType::LocalReply, std::move(p));
  }

  SandboxHost& host_;
  Link& link_;
  const uint64_t id_;
};

namespace {

// Set while a Stream's chain is being built, so the filters made for it can find it.
thread_local SandboxHost::Stream* t_building = nullptr;

}  // namespace

// In place of the router: the request leaves the chain here, and the proxy's response enters.
class SandboxHost::Sink : public http::StreamDecoderFilter {
public:
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override {
    stream_->passHeaders(0, headers, end_stream);
    return http::FilterHeadersStatus::StopIteration;
  }
  http::FilterDataStatus decodeData(http::Buffer& data, bool end_stream) override {
    stream_->passData(0, data.view(), end_stream);
    return http::FilterDataStatus::StopIterationNoBuffer;
  }
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override {
    stream_->passTrailers(0, trailers);
    return http::FilterTrailersStatus::StopIteration;
  }
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& cb) override {
    stream_ = t_building;
    stream_->sink = &cb;
    Stream* s = stream_;
    cb.setResponsePauseCallback(
        [s](bool pause) { s->sendFlag(MessageType::PauseResponse, pause); });
  }

private:
  Stream* stream_ = nullptr;
};

namespace {

class SinkFactory : public http::FilterFactory {
public:
  void createFilters(http::FilterChainBuilder& builder) const override {
    builder.addDecoderFilter(std::make_shared<SandboxHost::Sink>());
  }
  bool terminal() const override { return true; }
};

// Remembers the Golang filter a stream gets (to ask whether it is in Go).
class Capture : public http::FilterChainBuilder {
public:
  explicit Capture(http::FilterChainBuilder& inner) : inner_(inner) {}
  void addDecoderFilter(http::StreamDecoderFilterSharedPtr f) override {
    inner_.addDecoderFilter(std::move(f));
  }
  void addEncoderFilter(http::StreamEncoderFilterSharedPtr f) override {
    inner_.addEncoderFilter(std::move(f));
  }
  void addFilter(std::shared_ptr<http::StreamFilter> f) override {
    if (t_building != nullptr) {
      t_building->golang = std::dynamic_pointer_cast<golang::GolangFilter>(f);
    }
    inner_.addFilter(std::move(f));
  }

private:
  http::FilterChainBuilder& inner_;
};

class CapturingFactory : public http::FilterFactory {
public:
  explicit CapturingFactory(http::FilterFactoryPtr inner) : inner_(std::move(inner)) {}
  void createFilters(http::FilterChainBuilder& builder) const override {
    Capture c(builder);
    inner_->createFilters(c);
  }

private:
  http::FilterFactoryPtr inner_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SandboxHost>> SandboxHost::create(
    event::Dispatcher& dispatcher, const std::string& library_id, uint32_t concurrency,
    const std::string& yaml, std::function<void(std::string)> send_stats) {
  std::unique_ptr<SandboxHost> host(new SandboxHost(dispatcher));
  host->reporter_ = std::make_unique<StatsReporter>(host->stats_);
  host->stats_timer_ = dispatcher.createTimer([h = host.get()] { h->syncStats(); });
  host->send_stats_ = std::move(send_stats);
  dispatcher.setAfterPostedHook([h = host.get()] { h->afterWork(); });
  if (yaml.empty()) {
    return host;  // no filters (the supervisor's own tests)
  }
  auto bootstrap = config::loadBootstrapFromString(yaml);
  if (!bootstrap.ok()) {
    return bootstrap.status();
  }
  host->bootstrap_ = std::move(*bootstrap);
  // Here the library runs in this very process.
  host->bootstrap_.golang_libraries[library_id].isolation =
      config::Bootstrap::GolangLibrary::Isolation::InProcess;
  golang::registerGolangFilter(host->registry_);
  for (size_t i = 0; i < host->bootstrap_.listeners.size(); ++i) {
    auto hcm = std::make_unique<config::HttpConnectionManager>(host->bootstrap_.listeners[i].hcm);
    // The proxy keeps the stream's clocks; a mirror must not time out on its own.
    hcm->request_timeout = config::Millis(0);
    hcm->stream_idle_timeout = config::Millis(0);
    const std::string hcm_path =
        fmt::format("static_resources.listeners[{}].filter_chains[0].filters[0].typed_config", i);
    http::FilterFactoryContext context{host->bootstrap_, *hcm,
                                       hcm_path,         "http." + hcm->stat_prefix + ".",
                                       concurrency,      host->stats_};
    for (const auto& filter : hcm->http_filters) {
      if (!isGolangFilterOf(filter, library_id)) {
        continue;
      }
      auto factory = host->registry_.create(filter, context);
      if (!factory.ok()) {
        return factory.status();
      }
      std::vector<http::FilterFactoryPtr> chain;
      chain.push_back(std::make_unique<CapturingFactory>(std::move(*factory)));
      chain.push_back(std::make_unique<SinkFactory>());
      host->chains_[filter.typed_config.path] = http::ConnectionManagerConfig::createWithFilters(
          *hcm, host->chain_stats_, std::move(chain));
    }
    host->hcms_.push_back(std::move(hcm));
  }
  return host;
}

SandboxHost::SandboxHost(event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {
  // Spin for the proxy's next event only with a core of our own: spinning on the core the
  // proxy needs to answer would only delay the answer (DESIGN.md §6).
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1) {
    spin_checks_ = kSpinChecks;
  }
}

SandboxHost::~SandboxHost() {
  stop();
}

void SandboxHost::stop() {
  for (auto& link : links_) {
    for (auto& [id, s] : link->streams) {
      s->active->destroyFilters();
    }
    link->streams.clear();
  }
}

void SandboxHost::serve(std::unique_ptr<Channel> channel) {
  auto link = std::make_unique<Link>();
  Link& l = *link;
  l.channel = std::move(channel);
  l.in.emplace(l.channel->sandboxReader(kMaxEventPayload));
  l.out.emplace(l.channel->sandboxWriter());
  l.out->setDeferWake(true);  // one wake-up of the proxy per batch of actions (afterWork)
  l.retry = dispatcher_.createTimer([this, &l] { flush(l); });
  l.in->prepareToWait(0);
  l.watch = std::make_unique<event::FdWatch>(dispatcher_, l.in->wakeFd(), true,
                                             [this, &l] { onReadable(l); });
  links_.push_back(std::move(link));
}

void SandboxHost::flush(Link& link) {
  while (!link.queued.empty()) {
    auto& [type, payload] = link.queued.front();
    const auto r = link.out->write(type, payload);
    if (r == RingWriter::Result::Full) {
      link.out->flushWake();  // what did fit must reach the proxy, or the ring never drains
      link.retry->enable(std::chrono::milliseconds(1));
      return;
    }
    if (r != RingWriter::Result::Ok) {
      std::_Exit(3);
    }
    link.queued.pop_front();
  }
  link.out->flushWake();
}

void SandboxHost::onReadable(Link& link) {
  link.in->doneWaiting();
  do {
    Message m;
    RingReader::Result r;
    while ((r = link.in->read(&m)) == RingReader::Result::Message) {
      if (!onEvent(link, m.type, m.payload)) {
        r = RingReader::Result::Corrupt;
        break;
      }
    }
    if (r == RingReader::Result::Corrupt) {
      CORRAL_LOG(critical, "sandbox: malformed event from the proxy");
      std::_Exit(3);  // the proxy never sends one: our versions disagree
    }
    afterWork();  // ends with the actions' one wake-up of the proxy
  } while (link.in->prepareToWait(spin_checks_));
}

bool SandboxHost::onEvent(Link& link, uint32_t type, std::string_view payload) {
  WireReader r(payload);
  const uint64_t id = r.u64();
  if (static_cast<MessageType>(type) == MessageType::StreamStart) {
    const std::string key(r.bytes());
    http::StreamInfo info;
    readInfo(r, info, true);
    auto headers = std::make_unique<http::HeaderMap>();
    r.headers(*headers);
    const bool end = r.boolean();
    auto chain = chains_.find(key);
    if (!r.done() || chain == chains_.end() || link.streams.count(id) != 0) {
      return false;
    }
    auto s = std::make_unique<Stream>(*this, link, id);
    Stream& stream = *s;
    WireWriter(stream.received[0]).headers(*headers);
    stream.reported = InfoState::of(info);
    t_building = &stream;
    stream.active = std::make_unique<http::ActiveStream>(stream, *chain->second, std::move(info));
    t_building = nullptr;
    link.streams[id] = std::move(s);
    stream.awaiting_idle = true;
    stream.events = 1;
    stream.active->decodeHeaders(std::move(headers), end);
    return true;
  }
  auto it = link.streams.find(id);
  if (it == link.streams.end()) {
    return false;
  }
  Stream& s = *it->second;
  s.awaiting_idle = true;
  ++s.events;
  switch (static_cast<MessageType>(type)) {
  case MessageType::DecodeData:
  case MessageType::EncodeData: {
    const bool end = r.boolean();
    const std::string_view data = r.bytes();
    if (!r.done()) {
      return false;
    }
    if (static_cast<MessageType>(type) == MessageType::DecodeData) {
      s.active->decodeData(data, end);
    } else {
      http::Buffer b(data);
      s.sink->encodeData(b, end);
    }
    return true;
  }
  case MessageType::DecodeTrailers:
  case MessageType::EncodeTrailers: {
    auto trailers = std::make_unique<http::HeaderMap>();
    r.headers(*trailers);
    if (!r.done()) {
      return false;
    }
    if (static_cast<MessageType>(type) == MessageType::DecodeTrailers) {
      s.active->decodeTrailers(std::move(trailers));
    } else {
      s.sink->encodeTrailers(std::move(trailers));
    }
    return true;
  }
  case MessageType::EncodeHeaders: {
    readInfo(r, s.active->info(), false);
    auto headers = std::make_unique<http::HeaderMap>();
    r.headers(*headers);
    const bool end = r.boolean();
    if (!r.done()) {
      return false;
    }
    s.response_in = true;
    WireWriter(s.received[1]).headers(*headers);
    s.sink->encodeHeaders(std::move(headers), end);
    return true;
  }
  case MessageType::StreamEnd: {
    readInfo(r, s.active->info(), false);
    if (!r.done()) {
      return false;
    }
    s.active->destroyFilters();  // the log phases run here, as at the proxy's stream end
    std::unique_ptr<Stream> gone = std::move(it->second);
    link.streams.erase(it);
    gone->awaiting_idle = false;
    dispatcher_.deferredDelete(std::move(gone->active));
    dispatcher_.deferredDelete(std::move(gone));
    return true;
  }
  default:
    return false;
  }
}

void SandboxHost::syncStats() {
  if (!send_stats_) {
    return;
  }
  // At most one report per interval: scanning the store and waking the proxy's main thread
  // for every action would cost more than the rest of a request.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_stats_ < kStatsInterval) {
    if (!stats_timer_->enabled()) {
      stats_timer_->enable(kStatsInterval);
    }
    return;
  }
  last_stats_ = now;
  std::string changes = reporter_->changes();
  if (!changes.empty()) {
    send_stats_(std::move(changes));
  }
}

void SandboxHost::afterWork() {
  syncStats();
  for (auto& link : links_) {
    for (auto& [id, s] : link->streams) {
      s->syncInfo();
      s->syncIdle();
    }
    link->out->flushWake();
  }
}

}  // namespace corral::sandbox
