// A credentials provider for unit tests: each fetch answers from a script (a
// key id with its lifetime, or a failure), the last entry repeating. Never
// the proof that a real provider works: tests/e2e/test_credentials.py is.
#pragma once

#include <chrono>
#include <deque>
#include <string>

#include "credentials/providers.hpp"
#include "credentials/source.hpp"

namespace assetmv::testing {

// Keys on demand: each fetch answers from the script (a key id with its
// lifetime, or an error), the last entry repeating.
class ScriptedProvider : public credentials::Provider {
 public:
  struct Answer {
    std::string key;  // empty: fail
    std::chrono::milliseconds life{0};
  };
  ScriptedProvider(EventLoop& loop, std::deque<Answer> script, int* fetches)
      : loop_(loop), script_(std::move(script)), fetches_(fetches) {}
  void fetch(Done done) override {
    ++*fetches_;
    const Answer a = script_.size() > 1 ? script_.front() : script_.back();
    if (script_.size() > 1) script_.pop_front();
    loop_.post([a, done = std::move(done)] {
      if (a.key.empty()) return done(fail(ErrorKind::Retryable, "HTTP503", "scripted outage"));
      credentials::Fresh f;
      f.keys = {a.key, Secret("s-" + a.key), Secret("t-" + a.key)};
      if (a.life.count() > 0) f.expires = credentials::Source::Clock::now() + a.life;
      done(std::move(f));
    });
  }

 private:
  EventLoop& loop_;
  std::deque<Answer> script_;
  int* fetches_;
};

// A started Source over a ScriptedProvider (nullptr if its first fetch failed).
inline std::shared_ptr<credentials::Source> scripted_source(EventLoop& loop,
                                                            std::deque<ScriptedProvider::Answer> script, int* fetches,
                                                            credentials::RefreshOptions options = {}) {
  auto src = std::make_shared<credentials::Source>(
      loop, std::make_unique<ScriptedProvider>(loop, std::move(script), fetches), "scripted", options);
  if (!src->start()) return nullptr;
  return src;
}

}  // namespace assetmv::testing
