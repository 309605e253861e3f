#include "engine/db_session.hpp"

#include <fmt/format.h>

#include <thread>

namespace assetmv::engine {

Result<void> DbSession::connect() {
  table_.reset();
  conn_.reset();
  auto c = db::Connection::open(conninfo_, options_);
  if (!c) return tl::unexpected(c.error());
  conn_ = std::make_unique<db::Connection>(std::move(*c));
  table_ = std::make_unique<db::PathTable>(*conn_, ref_);
  return {};
}

bool DbSession::back_off(std::string_view what, const Error& e, int failures) {
  const auto delay = policy_.next_delay(failures, e.kind, jitter_());
  if (!delay) return false;
  logging::warn("db.retry", fmt::format("{} failed, retrying in {} ms: {}", what, delay->count(), e.describe()),
                {{"kind", to_string(e.kind)}});
  std::this_thread::sleep_for(*delay);
  return true;
}

}  // namespace assetmv::engine
