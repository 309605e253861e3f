#include "engine/deleter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

namespace assetmv::engine {

void Deleter::add(s3::ObjectVersion object) {
  if (!s3::xml_representable(object.key)) {  // control characters: XML 1.0 cannot carry them
    if (paused_) return alone_.push_back(std::move(object));
    return delete_alone(object);
  }
  queue_.push_back({std::move(object), 0});
  if (queue_.size() >= s3::kMaxDeleteKeys) flush();
}

void Deleter::set_paused(bool paused) {
  paused_ = paused;
  if (!paused_) flush();
}

void Deleter::flush() {
  if (!paused_) {
    auto alone = std::move(alone_);
    alone_.clear();
    for (const auto& k : alone) delete_alone(k);
  }
  while (!paused_ && !queue_.empty() && in_flight_ < kMaxRequests) {
    const std::size_t n = std::min(queue_.size(), s3::kMaxDeleteKeys);
    std::vector<Key> keys(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    send(std::move(keys));
  }
}

void Deleter::stop() {
  if (paused_) {  // paused: no delete starts, not even for a stop
    queue_.clear();
    alone_.clear();
  }
  backoff_.stop("the run is stopping");  // the keys waiting are left where they are (given_up drops them)
}

void Deleter::send(std::vector<Key> keys) {
  std::vector<s3::ObjectVersion> objects;
  objects.reserve(keys.size());
  for (const auto& k : keys) objects.push_back(k.object);
  ++in_flight_;
  store_.delete_objects(objects, [this, keys = std::move(keys)](Result<s3::DeleteResult> r) mutable {
    --in_flight_;
    answered(std::move(keys), std::move(r));
    flush();
  });
}

void Deleter::answered(std::vector<Key> keys, Result<s3::DeleteResult> r) {
  if (!r) {
    // Not sent, for a stop: the legacy objects stay, and a rerun deletes them.
    if (r.error().kind == ErrorKind::Interrupted) return;
    // The rows already point at the copies; only the cleanup is left.
    for (const auto& k : keys) failed_(k.object.key, r.error().describe());
    return;
  }
  // Quiet mode: the answer lists only the keys that failed.
  std::unordered_map<std::string_view, const s3::DeleteFailure*> failures;
  for (const auto& f : r->failed) failures.emplace(f.key, &f);
  std::vector<Key> again;
  ErrorKind again_kind = ErrorKind::Retryable;
  std::size_t deleted = 0;
  for (auto& k : keys) {
    auto it = failures.find(k.object.key);
    if (it == failures.end()) {
      ++deleted;
      continue;
    }
    const s3::DeleteFailure& f = *it->second;
    // One key of a batch sent key by key (a store without DeleteObjects)
    // given up for a stop: left in place, as an unsent batch is.
    if (f.code == "Interrupted") continue;
    const ErrorKind kind = classify_http(0, 200, f.code);
    if (kind == ErrorKind::Throttled || kind == ErrorKind::Retryable) {
      ++k.failures;
      if (o_.retry.next_delay(k.failures, kind, 0) && !backoff_.stopped()) {
        if (kind == ErrorKind::Throttled) again_kind = kind;
        again.push_back(std::move(k));
        continue;
      }
    }
    failed_(k.object.key, k.failures > 1 ? fmt::format("{}: {} (after {} attempts)", f.code, f.message, k.failures)
                                         : fmt::format("{}: {}", f.code, f.message));
  }
  if (deleted > 0) deleted_(deleted);
  if (!again.empty()) retry_later(std::move(again), again_kind);
}

void Deleter::retry_later(std::vector<Key> keys, ErrorKind kind) {
  if (kind == ErrorKind::Throttled) store_.throttled();  // a SlowDown in the body slows everyone, as a 503 does
  int failures = 0;
  for (const auto& k : keys) failures = std::max(failures, k.failures);
  const auto delay = backoff_.delay(failures, kind).value_or(o_.retry.cap);
  auto held = std::make_shared<std::vector<Key>>(std::move(keys));
  backoff_.wait(
      delay,
      [this, held] {
        // Ahead of the queue: they have waited already.
        queue_.insert(queue_.begin(), std::make_move_iterator(held->begin()), std::make_move_iterator(held->end()));
        flush();
      },
      [](const Error&) {});  // a stop: the keys stay, and a rerun deletes them
}

void Deleter::delete_alone(const s3::ObjectVersion& object) {
  ++in_flight_;
  store_.delete_object(object, [this, key = object.key](Result<bool> r) {
    --in_flight_;
    if (r) {
      deleted_(1);
    } else if (r.error().kind != ErrorKind::Interrupted) {
      failed_(key, r.error().describe());
    }
    flush();
  });
}

}  // namespace assetmv::engine
