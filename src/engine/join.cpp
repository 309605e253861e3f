#include "engine/join.hpp"

namespace assetmv::engine {

Result<Joiner::Step> Joiner::next(Group& out) {
  for (Lister* l : {&src_, &dst_}) {
    if (l->error()) return tl::unexpected(*l->error());
    if (!l->ready()) return Step::Wait;  // its page is in flight: on_progress comes
  }
  auto row = rows_.peek();
  if (!row) return tl::unexpected(row.error());
  const Listed* s = src_.front();
  const Listed* d = dst_.front();
  if (!s && !d && !*row) return Step::End;

  // The smallest name among the three heads.
  const std::string* name = nullptr;
  for (const std::string* n : {s ? &s->name : nullptr, d ? &d->name : nullptr, *row ? &(*row)->name : nullptr})
    if (n && (!name || *n < *name)) name = n;
  out = Group{};
  out.name = *name;

  if (s && s->name == out.name) {
    out.src = s->entry;
    src_.pop();
  }
  if (d && d->name == out.name) {
    out.dst = d->entry;
    dst_.pop();
  }
  for (;;) {
    auto r = rows_.peek();
    if (!r) return tl::unexpected(r.error());
    if (!*r || (*r)->name != out.name) break;
    ((*r)->tag == kRowDest ? out.dest_rows : out.legacy_rows).push_back((*r)->id);
    SpoolRecord discard;
    auto popped = rows_.next(discard);
    if (!popped) return tl::unexpected(popped.error());
  }
  return Step::Ready;
}

Feed::Feed(EventLoop& loop, ObjectStore& store, const Streams& streams, Spool& rows, std::function<void()> wake)
    : loop_(loop),
      wake_(std::move(wake)),
      src_(
          store, Side::Legacy, streams.legacy_prefix, [this] { request_wake(); }, streams.splits, streams.shard),
      dst_(
          store, Side::Dest, streams.dest_prefix, [this] { request_wake(); }, streams.splits, streams.shard),
      join_(src_, dst_, rows) {}

void Feed::request_wake() {
  if (wake_posted_ || !wake_) return;
  wake_posted_ = true;
  loop_.post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    wake_posted_ = false;
    wake_();
  });
}

Result<Feed::State> Feed::pump(const std::function<bool()>& has_room, const std::function<void(Group)>& take) {
  if (error_) return tl::unexpected(*error_);
  if (ended_) return State::Ended;
  while (has_room()) {
    Group g;
    auto step = join_.next(g);
    if (!step) {
      error_ = step.error();
      return tl::unexpected(*error_);
    }
    if (*step == Joiner::Step::Wait) return State::Waiting;
    if (*step == Joiner::Step::End) {
      ended_ = true;
      return State::Ended;
    }
    take(std::move(g));
  }
  return State::Full;
}

}  // namespace assetmv::engine
