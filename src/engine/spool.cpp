#include "engine/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace assetmv::engine {

bool spool_less(const SpoolRecord& a, const SpoolRecord& b) {
  // std::string compares through char_traits<char>, which orders bytes as
  // unsigned char: the same order as S3's UTF-8 binary listing.
  const int c = a.name.compare(b.name);
  if (c != 0) return c < 0;
  return a.id < b.id;
}

namespace {

Error io_error(const char* what) {
  return Error{
      ErrorKind::Fatal, "SpoolIO",
      std::string("temporary spool file: ") + what + ": " + std::error_code(errno, std::generic_category()).message()};
}

}  // namespace

// One sorted run on disk: records as [u32 name length][name][i64 id][u8 tag].
struct Spool::Run {
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }  // NOLINT(cppcoreguidelines-owning-memory)
  };
  std::unique_ptr<std::FILE, FileCloser> file;
  SpoolRecord head;

  Result<bool> read(SpoolRecord& r) {
    std::uint32_t len = 0;
    if (std::fread(&len, sizeof len, 1, file.get()) != 1) {
      if (std::feof(file.get())) return false;
      return tl::unexpected(io_error("read"));
    }
    r.name.resize(len);
    if ((len > 0 && std::fread(r.name.data(), 1, len, file.get()) != len) ||
        std::fread(&r.id, sizeof r.id, 1, file.get()) != 1 || std::fread(&r.tag, sizeof r.tag, 1, file.get()) != 1)
      return tl::unexpected(io_error("short read"));
    return true;
  }
};

Spool::Spool(std::size_t run_records) : run_records_(std::max<std::size_t>(run_records, 1)) {}
Spool::~Spool() = default;

Result<void> Spool::add(SpoolRecord r) {
  buffer_.push_back(std::move(r));
  ++total_;
  if (buffer_.size() >= run_records_) return spill();
  return {};
}

Result<void> Spool::spill() {
  std::sort(buffer_.begin(), buffer_.end(), spool_less);
  auto run = std::make_unique<Run>();
  run->file.reset(std::tmpfile());  // NOLINT(cppcoreguidelines-owning-memory): owned by the unique_ptr at once
  if (!run->file) return tl::unexpected(io_error("create"));
  for (const auto& r : buffer_) {
    const auto len = static_cast<std::uint32_t>(r.name.size());
    if (std::fwrite(&len, sizeof len, 1, run->file.get()) != 1 ||
        (len > 0 && std::fwrite(r.name.data(), 1, len, run->file.get()) != len) ||
        std::fwrite(&r.id, sizeof r.id, 1, run->file.get()) != 1 ||
        std::fwrite(&r.tag, sizeof r.tag, 1, run->file.get()) != 1)
      return tl::unexpected(io_error("write"));
  }
  if (std::fflush(run->file.get()) != 0) return tl::unexpected(io_error("flush"));
  buffer_.clear();
  buffer_.shrink_to_fit();
  runs_.push_back(std::move(run));
  return {};
}

Result<void> Spool::finish() {
  if (finished_) return {};
  finished_ = true;
  if (runs_.empty()) {
    // Everything fit in memory: no file at all.
    std::sort(buffer_.begin(), buffer_.end(), spool_less);
    in_memory_ = true;
    return {};
  }
  if (!buffer_.empty()) {
    auto s = spill();
    if (!s) return s;
  }
  auto later = [this](std::size_t a, std::size_t b) { return spool_less(runs_[b]->head, runs_[a]->head); };
  for (std::size_t i = 0; i < runs_.size(); ++i) {
    std::rewind(runs_[i]->file.get());
    auto got = runs_[i]->read(runs_[i]->head);
    if (!got) return tl::unexpected(got.error());
    if (*got) {
      heap_.push_back(i);
      std::push_heap(heap_.begin(), heap_.end(), later);
    }
  }
  return {};
}

Result<bool> Spool::pop(SpoolRecord& out) {
  if (in_memory_) {
    if (memory_pos_ >= buffer_.size()) return false;
    out = std::move(buffer_[memory_pos_++]);
    return true;
  }
  if (heap_.empty()) return false;
  auto later = [this](std::size_t a, std::size_t b) { return spool_less(runs_[b]->head, runs_[a]->head); };
  std::pop_heap(heap_.begin(), heap_.end(), later);
  const std::size_t i = heap_.back();
  heap_.pop_back();
  out = std::move(runs_[i]->head);
  auto got = runs_[i]->read(runs_[i]->head);
  if (!got) return tl::unexpected(got.error());
  if (*got) {
    heap_.push_back(i);
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  return true;
}

Result<const SpoolRecord*> Spool::peek() {
  if (!peeked_) {
    SpoolRecord r;
    auto got = pop(r);
    if (!got) return tl::unexpected(got.error());
    if (!*got) return nullptr;
    peeked_ = std::move(r);
  }
  return &*peeked_;
}

Result<bool> Spool::next(SpoolRecord& out) {
  if (peeked_) {
    out = std::move(*peeked_);
    peeked_.reset();
    return true;
  }
  return pop(out);
}

}  // namespace assetmv::engine
