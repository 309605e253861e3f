// One name on its way through the stages (plan -> copy -> verify -> rewrite
// -> delete), the state it is in (docs/design.md's per-object state
// machine), and how its copy ended: what the copy and verify stages hand
// back to the migration, which counts it and moves it on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "s3/parsers.hpp"

namespace assetmv::engine {

// Where an item is in docs/design.md's state machine. The migration moves
// it only along allowed() arrows (the unit tests' fakes check every one),
// and every item it admits ends in a terminal state.
enum class State {
  Listed,      // planned from the two listings and the table
  Copying,     // in the copy or verify stage (COPIED is a moment inside it)
  Verified,    // the destination is proven the listed object: copied now, or already in place
  Restamping,  // the destination is being copied onto itself for the grace clock
  Rewriting,   // its rows are queued for, or in, a compare-and-set batch
  Rewritten,   // the batch committed: each row updated, or superseded by the application
  Resolving,   // --delete-versions: the version to delete is being read
  // Terminal:
  Done,        // nothing left for this run: its legacy object handed to the deleter (whose
               // answer is per key: a failure is reported as delete_failed), kept, in grace, or gone
  NeedsHuman,  // conflict, dangling rows, unreadable, key too long: reported, nothing changed
  Failed,      // a request failed for good, or the object changed: reported, its rows untouched
  Deferred,    // left for a rerun by a stop, before anything of it changed that a rerun would not find
};

constexpr bool terminal(State s) {
  return s == State::Done || s == State::NeedsHuman || s == State::Failed || s == State::Deferred;
}
// The arrows of the state machine.
bool allowed(State from, State to);
const char* to_string(State s);

struct Item {
  std::string name;                    // the key without its prefix
  std::string legacy_key;              // legacy prefix + name
  std::string dest_key;                // destination prefix + name
  std::optional<s3::ObjectEntry> src;  // the legacy object, as listed
  std::optional<s3::ObjectEntry> dst;  // the destination object, as listed
  std::vector<std::int64_t> ids;       // rows whose path is legacy_key
  bool copied_now = false;             // this run wrote the destination (its LastModified is now)
  State state = State::Listed;
};
using ItemPtr = std::shared_ptr<Item>;

struct Settled {
  enum class Kind {
    Copied,    // this run made the copy, and it is verified
    InPlace,   // the destination already held identical content
    Conflict,  // cannot move without a human's decision; nothing changed
    // The legacy object cannot be read as things stand (archived without a
    // completed restore, or encrypted with a customer's key): a human acts
    // first (a restore), a later run moves it; nothing changed.
    Unreadable,
    Failed,   // a request failed for good, or the object changed; nothing changed for its rows
    NotSent,  // given up for a stop before it was sent: a rerun does it
  };
  Kind kind = Kind::Failed;
  std::string why = {};                       // Conflict, Failed: for the report
  std::string report_kind = "conflict";       // Conflict: conflict, key_too_long; Unreadable: archived, sse_c
  std::optional<Error> error = std::nullopt;  // Failed by a request's error: the migration weighs it (outage, fatal)
};

// An error no other item would escape (the credentials lost access, a bucket
// is gone): the run stops rather than fail every item the same way.
inline bool stops_the_run(const Error& e) { return e.kind == ErrorKind::AccessDenied || e.code == "NoSuchBucket"; }

// Called once per item handed to the copy or verify stage.
using SettledFn = std::function<void(const ItemPtr&, Settled)>;

}  // namespace assetmv::engine
