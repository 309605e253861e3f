#include "credentials/source.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.hpp"
#include "core/utc_time.hpp"

namespace assetmv::credentials {

namespace {

constexpr std::chrono::milliseconds kStartPause{250};  // between the first fetch's attempts

EventLoop::Clock::time_point steady_at(Source::Clock::time_point when) {
  const auto now = Source::Clock::now();
  const auto delay = when > now ? when - now : Source::Clock::duration::zero();
  return EventLoop::Clock::now() + std::chrono::duration_cast<EventLoop::Clock::duration>(delay);
}

std::string seconds_from_now(Source::Clock::time_point t) {
  return fmt::format("{:.0f} s", std::chrono::duration<double>(t - Source::Clock::now()).count());
}

}  // namespace

RetryPolicy refresh_backoff() {
  RetryPolicy p;
  p.base = std::chrono::milliseconds(1'000);
  p.throttled_base = std::chrono::milliseconds(2'000);
  p.cap = std::chrono::milliseconds(30'000);
  p.max_attempts = 1'000'000;  // the source's own rule decides when to give up
  return p;
}

std::shared_ptr<Source> Source::fixed(sigv4::Credentials keys, std::string description) {
  return std::shared_ptr<Source>(new Source(FixedTag{}, std::move(keys), std::move(description)));
}

Source::Source(FixedTag, sigv4::Credentials keys, std::string description) : description_(std::move(description)) {
  stats_.access_key_id = keys.access_key_id;
  current_ = Fresh{std::move(keys), std::nullopt};
}

Source::Source(EventLoop& loop, std::unique_ptr<Provider> provider, std::string description, Options options)
    : loop_(&loop), provider_(std::move(provider)), description_(std::move(description)), o_(options) {}

Source::~Source() {
  *alive_ = false;
  if (timer_armed_ && loop_ != nullptr) loop_->cancel(timer_);
}

std::string Source::identity() const {
  if (!refreshable()) return "keys:" + stats_.access_key_id;
  return "chain:" + description_;
}

Result<void> Source::start() {
  if (!refreshable()) return {};
  for (int attempt = 1;; ++attempt) {
    starting_ = true;
    start_error_.reset();
    fetch();
    auto w = loop_->run_until("the first credentials from " + description_,
                              [this] { return current_.has_value() || start_error_.has_value(); });
    starting_ = false;
    if (!w) return w;
    if (current_) return {};
    if (!start_error_->retryable() || attempt == kStartAttempts) return tl::unexpected(*start_error_);
    logging::warn("credentials.retry",
                  fmt::format("fetching credentials failed, trying again: {}", start_error_->describe()));
    bool slept = false;
    const auto t = loop_->call_after(kStartPause * attempt, [&slept] { slept = true; });
    if (auto s = loop_->run_until("a pause before fetching credentials again", [&slept] { return slept; }); !s) {
      loop_->cancel(t);
      return s;
    }
  }
}

const sigv4::Credentials* Source::keys(Clock::time_point now) {
  // The refresh runs from its timer; a request only reads.
  if (!current_ || failure_ || now >= usable_until_) return nullptr;
  return &current_->keys;
}

void Source::when_ready(Ready cb) {
  if (failure_ || (current_ && Clock::now() < usable_until_)) {
    auto e = failure_;
    loop_->post([alive = std::weak_ptr<bool>(alive_), cb = std::move(cb), e] {
      if (alive.lock()) cb(e);
    });
    return;
  }
  waiters_.push_back(std::move(cb));
  // Someone waits now: a refresh scheduled as passive must count, or start.
  if (in_flight_) return;
  if (!timer_armed_) return fetch();
  if (timer_passive_) schedule(timer_when_);
}

void Source::refused(const std::string& access_key_id) {
  if (!refreshable() || !current_ || current_->keys.access_key_id != access_key_id) return;  // newer keys already
  const auto now = Clock::now();
  if (usable_until_ > now) {
    logging::warn("credentials.refused",
                  fmt::format("the store refused access key {} of {}: fetching new keys", access_key_id, description_));
    usable_until_ = now;
  }
  refused_ = true;
  if (!in_flight_) fetch();
}

void Source::doubt(const std::string& access_key_id) {
  const auto now = Clock::now();
  if (!current_ || current_->keys.access_key_id != access_key_id || now - last_doubt_ < kDoubtInterval) return;
  last_doubt_ = now;
  refused(access_key_id);
}

void Source::fetch() {
  if (in_flight_ || failure_ || !provider_) return;
  if (timer_armed_) {
    loop_->cancel(timer_);
    timer_armed_ = false;
  }
  in_flight_ = true;
  provider_->fetch([this, alive = std::weak_ptr<bool>(alive_)](Result<Fresh> r) {
    if (alive.lock()) fetched(std::move(r));
  });
}

void Source::install(Fresh f, Clock::time_point now) {
  const bool first = !current_.has_value();
  current_ = std::move(f);
  failures_in_a_row_ = 0;
  refused_ = false;
  stats_.expires = current_->expires;
  stats_.access_key_id = current_->keys.access_key_id;
  if (!current_->expires) {
    refresh_at_ = usable_until_ = Clock::time_point::max();
  } else {
    const auto expires = *current_->expires;
    const auto life = std::max(Clock::duration::zero(), expires - now);
    refresh_at_ = expires - std::min<Clock::duration>(o_.advisory, life / 2);
    usable_until_ = expires - std::min<Clock::duration>(o_.margin, life / 10);
    schedule(refresh_at_);
  }
  if (!first) {
    ++stats_.refreshes;
    logging::info("credentials.refreshed",
                  fmt::format("new keys from {} (access key {}){}", description_, current_->keys.access_key_id,
                              current_->expires ? ", valid until " + format_utc_time(*current_->expires) + " (" +
                                                      seconds_from_now(*current_->expires) + ")"
                                                : ""),
                  {{"access_key_id", current_->keys.access_key_id},
                   {"refreshes", stats_.refreshes},
                   {"expires", current_->expires ? format_utc_time(*current_->expires) : ""}});
  }
}

void Source::fetched(Result<Fresh> r) {
  in_flight_ = false;
  const auto now = Clock::now();
  if (r) {
    install(std::move(*r), now);
    notify(std::nullopt);
    return;
  }
  ++stats_.failures;
  if (starting_ && !current_) {
    start_error_ = r.error();
    return;
  }
  ++failures_in_a_row_;
  const bool unusable = now >= usable_until_;
  // Given up only for keys that are no good any more: refused by the
  // store, or past their expiry (not merely inside the margin before it).
  const bool dead = refused_ || !current_->expires || now >= *current_->expires;
  if (unusable && dead && failures_in_a_row_ >= o_.give_up_after) {
    const std::string when = refused_ ? std::string("were refused by the store")
                                      : fmt::format("expired at {}", format_utc_time(*current_->expires));
    failure_ = Error{ErrorKind::AccessDenied, "CredentialsExpired",
                     fmt::format("the keys from {} {} and {} refreshes in a row failed, the last with: {}",
                                 description_, when, failures_in_a_row_, r.error().describe())};
    logging::error("credentials.expired", failure_->message);
    notify(failure_);
    return;
  }
  auto delay =
      o_.retry
          .next_delay(failures_in_a_row_,
                      r.error().kind == ErrorKind::Throttled ? ErrorKind::Throttled : ErrorKind::Retryable, jitter_())
          .value_or(o_.retry.cap);
  auto next = now + delay;
  // While the keys still sign, try again before they stop.
  if (!unusable) next = std::min(next, std::max(now, usable_until_ - (usable_until_ - now) / 2));
  logging::warn(
      "credentials.refresh_failed",
      fmt::format("refreshing credentials failed ({} in a row), trying again in {}: {}{}", failures_in_a_row_,
                  seconds_from_now(next), r.error().describe(),
                  unusable ? "; requests wait for new keys"
                           : fmt::format("; the current keys sign for {} more", seconds_from_now(usable_until_))));
  schedule(next);
}

void Source::schedule(Clock::time_point when) {
  if (timer_armed_) loop_->cancel(timer_);
  timer_when_ = when;
  timer_armed_ = true;
  // Nobody waits: a refresh due in half an hour must not keep a wait that
  // nothing else could end from being reported (EventLoop::run_until).
  timer_passive_ = waiters_.empty() && Clock::now() < usable_until_;
  auto fire = [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.lock()) return;
    timer_armed_ = false;
    fetch();
  };
  timer_ = timer_passive_ ? loop_->call_passive_at(steady_at(when), fire) : loop_->call_at(steady_at(when), fire);
}

void Source::notify(const std::optional<Error>& e) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w(e);
}

}  // namespace assetmv::credentials
