#include "core/shard.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "core/digest.hpp"

namespace assetmv {

namespace {

std::optional<std::uint32_t> number(std::string_view s) {
  std::uint32_t v = 0;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

}  // namespace

std::uint32_t Shard::of(std::string_view name, std::uint32_t count) {
  const Md5 d = md5(name);
  const std::uint32_t h = (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
  return h % count;
}

Result<Shard> Shard::parse(std::string_view text) {
  const auto slash = text.find('/');
  const auto k = slash == std::string_view::npos ? std::nullopt : number(text.substr(0, slash));
  const auto n = slash == std::string_view::npos ? std::nullopt : number(text.substr(slash + 1));
  if (!k || !n || *n == 0 || *n > kMaxCount || *k >= *n)
    return fail(ErrorKind::Fatal, "BadShard",
                fmt::format("--shard {:?}: expected K/N with 0 <= K < N <= {} (e.g. 0/4 for the first of four)", text,
                            kMaxCount));
  return Shard{*k, *n};
}

Result<Shard> Shard::from_env(std::uint32_t count, const std::function<const char*(const char*)>& getenv) {
  if (count == 0 || count > kMaxCount)
    return fail(ErrorKind::Fatal, "BadShard", fmt::format("--shards {}: expected 1 to {}", count, kMaxCount));
  for (const char* var : kShardIndexVariables) {
    const char* v = getenv(var);
    if (v == nullptr) continue;
    const auto k = number(v);
    if (!k || *k >= count)
      return fail(
          ErrorKind::Fatal, "BadShard",
          fmt::format("--shards {}: {}={:?} is not an index from 0 to {}", count, var, std::string_view(v), count - 1));
    return Shard{*k, count};
  }
  return fail(ErrorKind::Fatal, "BadShard",
              fmt::format("--shards {}: neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) nor "
                          "AWS_BATCH_JOB_ARRAY_INDEX (an AWS Batch array job) is set; give --shard K/{} instead",
                          count, count));
}

}  // namespace assetmv
