// The engine's ObjectStore on real S3: the client bound to the run's legacy
// and destination buckets (held by value, so nothing depends on the caller's),
// adding to every object it writes what the operator asked all of them to
// carry (s3::WriteOptions: ACL, encryption).
#pragma once

#include "engine/store.hpp"

namespace assetmv::engine {

class S3Store final : public ObjectStore {
 public:
  S3Store(s3::Client& client, s3::Bucket legacy, s3::Bucket dest, const s3::WriteOptions& write = {});

  void list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) override;
  void head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) override;
  void copy(s3::CopyParams p, std::uint64_t size, Callback<std::string> cb) override;
  void multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, Callback<std::string> cb) override;
  void restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) override;
  void stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                   Callback<std::string> cb) override;
  void delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) override;
  void delete_object(const s3::ObjectVersion& legacy, Callback<bool> cb) override;
  void throttled() override;
  void hold(bool held) override { client_.set_held(held); }
  void stop_retrying(const std::string& why) override;
  bool idle() const override { return client_.idle(); }
  bool same_service() const override { return same_service_; }
  std::string bucket_name(Side side) const override { return bucket(side).name; }

 private:
  const s3::Bucket& bucket(Side side) const { return side == Side::Legacy ? legacy_ : dest_; }

  s3::Client& client_;
  s3::Bucket legacy_;
  s3::Bucket dest_;
  bool same_service_ = false;
  std::vector<http::Header> write_;  // s3::write_headers of the run's WriteOptions
  bool sse_given_ = false;
};

}  // namespace assetmv::engine
