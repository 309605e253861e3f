#include "engine/report.hpp"

namespace assetmv::engine {

void Report::needs_human(HumanItem item) {
  ++human_count_;
  if (items_.size() < kMaxListedItems) items_.push_back(std::move(item));
}

nlohmann::json Report::items_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& i : items_) {
    nlohmann::json j = {{"kind", i.kind}, {"key", i.key}, {"message", i.message}};
    if (!i.dest_key.empty()) j["dest_key"] = i.dest_key;
    if (!i.row_ids.empty()) j["row_ids"] = i.row_ids;
    list.push_back(std::move(j));
  }
  return {{"count", human_count_}, {"listed", items_.size()}, {"items", std::move(list)}};
}

nlohmann::json counts_json(const Counts& c, CountsOf command) {
  if (command == CountsOf::Rollback)
    return {{"rows_found", c.legacy_rows_found},    {"rows_restored", c.rows_rewritten},
            {"rows_superseded", c.rows_superseded}, {"rows_kept", c.rows_kept},
            {"dangling_rows", c.dangling_rows},     {"failures", c.failures}};
  if (command == CountsOf::Verify)
    return {{"rows_total", c.rows_total},
            {"rows_legacy", c.rows_legacy},
            {"rows_dest", c.rows_dest},
            {"rows_other_prefix", c.rows_other},
            {"rows_null_path", c.rows_null},
            {"rows_empty_path", c.rows_empty},
            {"rows_missing_object", c.rows_missing_object},
            {"dangling_rows", c.dangling_rows},
            {"legacy_objects_left", c.legacy_objects_listed},
            {"legacy_objects_in_grace", c.legacy_objects_in_grace},
            {"dest_objects", c.dest_objects_listed}};
  return {{"legacy_rows_found", c.legacy_rows_found},
          {"legacy_objects_listed", c.legacy_objects_listed},
          {"rows_rewritten", c.rows_rewritten},
          {"objects_copied", c.objects_copied},
          {"objects_already_in_place", c.objects_already_in_place},
          {"orphan_objects_moved", c.orphan_objects_moved},
          {"rows_superseded", c.rows_superseded},
          {"dangling_rows", c.dangling_rows},
          {"conflicts", c.conflicts},
          {"archived_objects", c.archived_objects},
          {"sse_c_objects", c.sse_c_objects},
          {"legacy_objects_deleted", c.legacy_objects_deleted},
          {"legacy_objects_kept", c.legacy_objects_kept},
          {"legacy_objects_in_grace", c.legacy_objects_in_grace},
          {"failures", c.failures}};
}

}  // namespace assetmv::engine
