// --dry-run as a wrapper around the seam (store.hpp), so that no stage knows
// of it: RecordingStore passes the reads (listings, HEADs) to the real store
// and answers every write as a success without sending it, counting in a
// Forecast what the real run would have sent; CountingRows reads the table
// for real and answers every compare-and-set as if each row were updated.
// The stages then run exactly as in a real run, with the same part sizes,
// batches and restamps, and the report's counts say what it would do.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/loop.hpp"
#include "engine/forecast.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class RecordingStore final : public ObjectStore {
 public:
  RecordingStore(EventLoop& loop, ObjectStore& real) : loop_(loop), real_(real) {}

  // What the writes would have been, by S3 operation.
  const Forecast& forecast() const { return forecast_; }

  void list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) override { real_.list(side, p, cb); }
  // A HEAD of a copy it answered (the verify stage's, for a copy whose ETag
  // cannot prove it) is answered from that copy and counted; others are real.
  void head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) override;
  void copy(s3::CopyParams p, std::uint64_t size, Callback<std::string> cb) override;
  void multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, Callback<std::string> cb) override;
  void restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) override;
  void stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                   Callback<std::string> cb) override;
  void delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) override;
  void delete_object(const s3::ObjectVersion& legacy, Callback<bool> cb) override;
  void throttled() override { real_.throttled(); }
  void hold(bool held) override { real_.hold(held); }
  void stop_retrying(const std::string& why) override { real_.stop_retrying(why); }
  bool idle() const override { return pending_ == 0 && real_.idle(); }
  bool same_service() const override { return real_.same_service(); }
  std::string bucket_name(Side side) const override { return real_.bucket_name(side); }

 private:
  // Answers on the loop, as the real store does, never inside the call.
  template <class T>
  void answer(Callback<T> cb, T value);
  // A written copy the verify stage will HEAD (its ETag is no MD5 of the
  // source, or it went in parts): held until that HEAD, so at most the copies
  // in flight.
  void wrote(const s3::CopyParams& p, std::uint64_t size, bool in_parts);

  EventLoop& loop_;
  ObjectStore& real_;
  Forecast forecast_;
  std::unordered_map<std::string, s3::ObjectInfo> written_;  // by destination key
  int pending_ = 0;
};

class CountingRows final : public RowStore {
 public:
  CountingRows(EventLoop& loop, RowStore& real) : loop_(loop), real_(real) {}

  Result<Bounds> id_bounds() override { return real_.id_bounds(); }
  Result<std::vector<db::Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                    const Shard& shard) override {
    return real_.scan(after, upto, prefix, limit, shard);
  }
  Result<std::vector<db::Row>> page(std::int64_t after, int limit) override { return real_.page(after, limit); }
  void compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) override;
  void stop(const std::string& why) override { real_.stop(why); }

  std::uint64_t statements() const { return statements_; }

 private:
  EventLoop& loop_;
  RowStore& real_;
  std::uint64_t statements_ = 0;
};

}  // namespace assetmv::engine
