#include "source/http/filter_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::http {
namespace {

using ::testing::ElementsAre;

std::vector<std::string>* g_log = nullptr;

// A filter whose answers are scripted per test; it logs every callback.
struct Script {
  std::function<FilterHeadersStatus(HeaderMap&, bool)> headers;
  std::function<FilterDataStatus(Buffer&, bool)> data;
  std::function<FilterTrailersStatus(HeaderMap&)> trailers;
  std::function<FilterHeadersStatus(HeaderMap&, bool)> enc_headers;
  std::function<FilterDataStatus(Buffer&, bool)> enc_data;
};

class ScriptedFilter : public StreamFilter {
public:
  ScriptedFilter(std::string name, Script* script) : name_(std::move(name)), script_(script) {}
  FilterHeadersStatus decodeHeaders(HeaderMap& h, bool end) override {
    g_log->push_back(name_ + ".decodeHeaders" + (end ? "(end)" : ""));
    return script_->headers ? script_->headers(h, end) : FilterHeadersStatus::Continue;
  }
  FilterDataStatus decodeData(Buffer& d, bool end) override {
    g_log->push_back(name_ + ".decodeData(" + std::string(d.view()) + (end ? ",end)" : ")"));
    return script_->data ? script_->data(d, end) : FilterDataStatus::Continue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap& t) override {
    g_log->push_back(name_ + ".decodeTrailers");
    return script_->trailers ? script_->trailers(t) : FilterTrailersStatus::Continue;
  }
  FilterHeadersStatus encodeHeaders(HeaderMap& h, bool end) override {
    g_log->push_back(name_ + ".encodeHeaders(" + std::string(h.getView(":status")) +
                     (end ? ",end)" : ")"));
    return script_->enc_headers ? script_->enc_headers(h, end) : FilterHeadersStatus::Continue;
  }
  FilterDataStatus encodeData(Buffer& d, bool end) override {
    g_log->push_back(name_ + ".encodeData(" + std::string(d.view()) + (end ? ",end)" : ")"));
    return script_->enc_data ? script_->enc_data(d, end) : FilterDataStatus::Continue;
  }
  FilterTrailersStatus encodeTrailers(HeaderMap&) override {
    g_log->push_back(name_ + ".encodeTrailers");
    return FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& cb) override { decoder = &cb; }
  void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& cb) override { encoder = &cb; }
  void onDestroy() override { g_log->push_back(name_ + ".onDestroy"); }

  StreamDecoderFilterCallbacks* decoder = nullptr;
  StreamEncoderFilterCallbacks* encoder = nullptr;

private:
  std::string name_;
  Script* script_;
};

struct Factory : public FilterFactory {
  Factory(std::string n, Script* s, std::vector<std::shared_ptr<ScriptedFilter>>* out, bool t)
      : name(std::move(n)), script(s), made(out), is_terminal(t) {}
  void createFilters(FilterChainBuilder& b) const override {
    auto f = std::make_shared<ScriptedFilter>(name, script);
    made->push_back(f);
    if (is_terminal) {
      b.addDecoderFilter(f);
    } else {
      b.addFilter(f);
    }
  }
  bool terminal() const override { return is_terminal; }
  std::string name;
  Script* script;
  std::vector<std::shared_ptr<ScriptedFilter>>* made;
  bool is_terminal;
};

class FakeOwner : public StreamOwner {
public:
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  void writeHeaders(HeaderMap& h, bool end) override {
    g_log->push_back("wire.headers(" + std::string(h.getView(":status")) + (end ? ",end)" : ")"));
  }
  void writeData(std::string_view d, bool end) override {
    g_log->push_back("wire.data(" + std::string(d) + (end ? ",end)" : ")"));
  }
  void writeTrailers(const HeaderMap&) override { g_log->push_back("wire.trailers"); }
  void readDisable(bool) override {}
  size_t bufferedWriteBytes() const override { return 0; }
  void onWriteDrained(std::function<void()>) override {}
  void onResponseComplete() override { g_log->push_back("wire.complete"); }
  void onStreamReset(std::string_view d) override {
    g_log->push_back("wire.reset:" + std::string(d));
  }
  event::Dispatcher dispatcher_;
};

class FilterManagerTest : public ::testing::Test {
protected:
  void SetUp() override {
    g_log = &log_;
    hcm_.stat_prefix = "t";
    for (const char* n : {"a", "b", "router"}) {
      config::HttpFilter f;
      f.name = n;
      hcm_.http_filters.push_back(f);
    }
    registry_.add("a", "",
                  [this](const config::HttpFilter&,
                         FilterFactoryContext&) -> absl::StatusOr<FilterFactoryPtr> {
                    return std::make_unique<Factory>("a", &a_, &made_, false);
                  });
    registry_.add("b", "",
                  [this](const config::HttpFilter&,
                         FilterFactoryContext&) -> absl::StatusOr<FilterFactoryPtr> {
                    return std::make_unique<Factory>("b", &b_, &made_, false);
                  });
    registry_.add("router", "",
                  [this](const config::HttpFilter&,
                         FilterFactoryContext&) -> absl::StatusOr<FilterFactoryPtr> {
                    return std::make_unique<Factory>("router", &router_, &made_, true);
                  });
    // Terminal filter default: stop everything (like the router before upstream answers).
    router_.headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
    router_.data = [](Buffer&, bool) { return FilterDataStatus::StopIterationNoBuffer; };
    router_.trailers = [](HeaderMap&) { return FilterTrailersStatus::StopIteration; };
    auto cfg = ConnectionManagerConfig::create(hcm_, "hcm", bootstrap_, registry_, store_, 1);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    config_ = *cfg;
  }
  void TearDown() override { g_log = nullptr; }

  std::unique_ptr<ActiveStream> newStream() {
    auto s = std::make_unique<ActiveStream>(owner_, *config_, StreamInfo{});
    log_.clear();
    return s;
  }
  static HeaderMapPtr requestHeaders() {
    auto h = std::make_unique<HeaderMap>();
    h->add(":method", "POST");
    h->add(":path", "/");
    h->add(":authority", "x");
    return h;
  }
  ScriptedFilter& filter(size_t i) { return *made_[i]; }

  std::vector<std::string> log_;
  config::Bootstrap bootstrap_;
  config::HttpConnectionManager hcm_;
  FilterRegistry registry_;
  stats::Store store_;
  ConnectionManagerConfigSharedPtr config_;
  Script a_, b_, router_;
  std::vector<std::shared_ptr<ScriptedFilter>> made_;
  FakeOwner owner_;
};

TEST_F(FilterManagerTest, StopIterationStillFeedsTheStoppingFilter) {
  a_.headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopIteration; };
  a_.data = [](Buffer&, bool end) {
    return end ? FilterDataStatus::Continue : FilterDataStatus::StopIterationAndBuffer;
  };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  s->decodeData("x");
  s->decodeComplete();
  EXPECT_THAT(log_, ElementsAre("a.decodeHeaders", "a.decodeData(x)", "a.decodeData(,end)",
                                "b.decodeHeaders", "router.decodeHeaders", "b.decodeData(x,end)",
                                "router.decodeData(x,end)"));
}

TEST_F(FilterManagerTest, StopAllBuffersBodyAndHoldsTrailersUntilContinue) {
  a_.headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopAllIterationAndBuffer; };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  s->decodeData("hel");
  s->decodeData("lo");
  auto t = std::make_unique<HeaderMap>();
  t->add("x-t", "1");
  s->decodeTrailers(std::move(t));
  EXPECT_THAT(log_, ElementsAre("a.decodeHeaders"));
  log_.clear();
  filter(0).decoder->continueDecoding();
  EXPECT_THAT(log_,
              ElementsAre("b.decodeHeaders", "router.decodeHeaders", "b.decodeData(hello)",
                          "router.decodeData(hello)", "b.decodeTrailers", "router.decodeTrailers"));
}

TEST_F(FilterManagerTest, StopAllWithEndOfStreamPassesEndOnContinue) {
  a_.headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopAllIterationAndBuffer; };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  s->decodeData("abc");
  s->decodeComplete();
  log_.clear();
  filter(0).decoder->continueDecoding();
  EXPECT_THAT(log_, ElementsAre("b.decodeHeaders", "router.decodeHeaders", "b.decodeData(abc,end)",
                                "router.decodeData(abc,end)"));
  log_.clear();
  filter(0).decoder->continueDecoding();  // a second continue is a no-op
  EXPECT_TRUE(log_.empty());
}

TEST_F(FilterManagerTest, NoBufferDropsChunkUntilLaterContinue) {
  b_.data = [](Buffer&, bool end) {
    return end ? FilterDataStatus::Continue : FilterDataStatus::StopIterationNoBuffer;
  };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  s->decodeData("dropped");
  s->decodeData("z");
  s->decodeComplete();
  EXPECT_THAT(log_, ElementsAre("a.decodeHeaders", "b.decodeHeaders", "router.decodeHeaders",
                                "a.decodeData(dropped)", "b.decodeData(dropped)", "a.decodeData(z)",
                                "b.decodeData(z)", "a.decodeData(,end)", "b.decodeData(,end)",
                                "router.decodeData(,end)"));
}

TEST_F(FilterManagerTest, AddDecodedDataReplacesTheBody) {
  a_.headers = [](HeaderMap&, bool) { return FilterHeadersStatus::StopAllIterationAndBuffer; };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  s->decodeData("original");
  s->decodeComplete();
  Buffer* buf = filter(0).decoder->decodingBuffer();
  ASSERT_NE(buf, nullptr);
  EXPECT_EQ(buf->view(), "original");
  buf->clear();
  Buffer replacement("new");
  filter(0).decoder->addDecodedData(replacement, false);
  log_.clear();
  filter(0).decoder->continueDecoding();
  EXPECT_THAT(log_, ElementsAre("b.decodeHeaders", "router.decodeHeaders", "b.decodeData(new,end)",
                                "router.decodeData(new,end)"));
}

TEST_F(FilterManagerTest, LocalReplyFromDecoderSkipsLaterFiltersAndRunsEncoders) {
  a_.headers = [this](HeaderMap&, bool) {
    filter(0).decoder->sendLocalReply(403, "denied", "test_denied",
                                      [](HeaderMap& h) { h.add("x-reason", "nope"); });
    return FilterHeadersStatus::StopIteration;
  };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), true);
  EXPECT_THAT(
      log_, ElementsAre("a.decodeHeaders(end)", "b.encodeHeaders(403)", "a.encodeHeaders(403)",
                        "wire.headers(403)", "b.encodeData(denied,end)", "a.encodeData(denied,end)",
                        "wire.data(denied,end)", "wire.complete"));
  ASSERT_NE(s->responseHeaders(), nullptr);
  EXPECT_EQ(s->responseHeaders()->getView("x-corral-error"), "test_denied");
  EXPECT_EQ(s->responseHeaders()->getView("x-reason"), "nope");
  EXPECT_EQ(s->info().response_code_details, "test_denied");
}

TEST_F(FilterManagerTest, ResponseRunsEncodersInReverseAndEncoderMayBuffer) {
  b_.enc_data = [](Buffer&, bool end) {
    return end ? FilterDataStatus::Continue : FilterDataStatus::StopIterationAndBuffer;
  };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), true);
  log_.clear();
  auto resp = std::make_unique<HeaderMap>();
  resp->add(":status", "200");
  filter(2).decoder->encodeHeaders(std::move(resp), false);
  Buffer one("1");
  filter(2).decoder->encodeData(one, false);
  Buffer two("2");
  filter(2).decoder->encodeData(two, true);
  EXPECT_THAT(log_, ElementsAre("b.encodeHeaders(200)", "a.encodeHeaders(200)", "wire.headers(200)",
                                "b.encodeData(1)", "b.encodeData(2,end)", "a.encodeData(12,end)",
                                "wire.data(12,end)", "wire.complete"));
}

TEST_F(FilterManagerTest, BufferLimitAnswers413) {
  a_.data = [](Buffer&, bool) { return FilterDataStatus::StopIterationAndBuffer; };
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), false);
  const std::string chunk(600 * 1024, 'x');
  s->decodeData(chunk);
  s->decodeData(chunk);
  ASSERT_NE(s->responseHeaders(), nullptr);
  EXPECT_EQ(s->responseHeaders()->getView(":status"), "413");
  EXPECT_EQ(s->info().response_code_details, "request_payload_too_large");
  log_.clear();
  s->decodeData("more");  // ignored after the local reply
  EXPECT_TRUE(log_.empty());
}

TEST_F(FilterManagerTest, DestroyTellsEachFilterOnceAndWritesNoMore) {
  auto s = newStream();
  s->decodeHeaders(requestHeaders(), true);
  log_.clear();
  s->destroyFilters();
  EXPECT_THAT(log_, ElementsAre("a.onDestroy", "b.onDestroy", "router.onDestroy"));
  log_.clear();
  auto resp = std::make_unique<HeaderMap>();
  resp->add(":status", "200");
  filter(2).decoder->encodeHeaders(std::move(resp), true);
  EXPECT_TRUE(log_.empty());
}

}  // namespace
}  // namespace corral::http
