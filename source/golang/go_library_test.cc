#include "source/golang/go_library.h"

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include "source/common/logger.h"

namespace corral::golang {
namespace {

using ::testing::HasSubstr;

// Collects log lines; readable while other threads (the Go runtime's) log.
class CollectingSink : public spdlog::sinks::base_sink<std::mutex> {
public:
  std::string contents() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    text_.append(msg.payload.data(), msg.payload.size());
    text_ += '\n';
  }
  void flush_() override {}

private:
  std::string text_;
};

TEST(GoLibraryTest, LoadsAGoPluginAndItsInitLogsThroughTheHost) {
  auto sink = std::make_shared<CollectingSink>();
  Logger::get().sinks().push_back(sink);
  Logger::setLevel("info");

  GoLibraryRegistry registry;
  auto lib = registry.get("test", CORRAL_TEST_PLUGINS_SO, "http_filters[0].library_path");
  ASSERT_TRUE(lib.ok()) << lib.status();
  // A c-shared library runs its Go package inits on a thread of its own: dlopen can return
  // first. Wait (bounded) for the init's log line.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink->contents().find("corral test plugins loaded") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Logger::get().sinks().pop_back();
  const GoExports& e = (*lib)->exports();
  EXPECT_NE(e.new_http_plugin_config, nullptr);
  EXPECT_NE(e.on_http_header, nullptr);
  EXPECT_NE(e.on_http_log, nullptr);
  EXPECT_NE(e.request_sema_dec, nullptr);
  EXPECT_NE(e.clean_up, nullptr);
  // The SDK's init asked for the log level (envoyGoFilterLogLevel) and logged at info.
  EXPECT_THAT(sink->contents(), HasSubstr("[golang] corral test plugins loaded"));

  // The same library_id is one library.
  auto again = registry.get("test", CORRAL_TEST_PLUGINS_SO, "x");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), lib->get());
  auto other = registry.get("test", CORRAL_NOT_A_GO_PLUGIN_SO, "filters[1].library_path");
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr("filters[1].library_path: library_id \"test\" is already loaded from"));
}

TEST(GoLibraryTest, MissingFileNamesTheYamlPath) {
  auto lib = GoLibrary::load("/nonexistent/plugin.so", "listeners[0].http_filters[0].library_path");
  ASSERT_FALSE(lib.ok());
  EXPECT_THAT(std::string(lib.status().message()),
              HasSubstr("listeners[0].http_filters[0].library_path: cannot load "
                        "\"/nonexistent/plugin.so\": No such file or directory"));
}

TEST(GoLibraryTest, NotAGoPlugin) {
  auto lib = GoLibrary::load(CORRAL_NOT_A_GO_PLUGIN_SO, "p");
  ASSERT_FALSE(lib.ok());
  EXPECT_THAT(std::string(lib.status().message()),
              HasSubstr("is not a Go plugin built with Envoy's Go SDK: missing export "
                        "envoyGoFilterNewHttpPluginConfig"));
}

TEST(GoLibraryTest, NotAnElfFile) {
  auto lib = GoLibrary::load("/etc/hostname", "p");
  ASSERT_FALSE(lib.ok());
  EXPECT_THAT(std::string(lib.status().message()), HasSubstr("p: cannot load \"/etc/hostname\""));
}

}  // namespace
}  // namespace corral::golang
