#include "engine/join.hpp"

namespace assetmv::engine {

Result<Joiner::Step> Joiner::next(Group& out) {
  for (Lister* l : {&src_, &dst_}) {
    if (l->error()) return tl::unexpected(*l->error());
    if (!l->ready()) {
      l->fill();
      return Step::Wait;
    }
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
  src_.fill();
  dst_.fill();
  return Step::Ready;
}

}  // namespace assetmv::engine
