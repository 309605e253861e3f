#include "engine/item.hpp"

namespace assetmv::engine {

bool allowed(State from, State to) {
  switch (from) {
    case State::Listed:  // the plan: copy or compare; rows onto an existing destination; or report
      return to == State::Copying || to == State::Verified || to == State::NeedsHuman || to == State::Done;
    case State::Copying:
      return to == State::Verified || to == State::NeedsHuman || to == State::Failed || to == State::Deferred;
    case State::Verified:  // rows to move (after a restamp, if the grace needs one), or straight to the delete
      return to == State::Restamping || to == State::Rewriting || to == State::Resolving || to == State::Done ||
             to == State::Deferred;
    case State::Restamping:
      return to == State::Rewriting || to == State::Failed || to == State::Deferred;
    case State::Rewriting:  // Deferred: a stop or a failing database; nothing of the batch committed
      return to == State::Rewritten || to == State::Deferred;
    case State::Rewritten:
      return to == State::Resolving || to == State::Done;
    case State::Resolving:  // Failed: the version is not the copy's, or cannot be read (delete_failed)
      return to == State::Done || to == State::Failed || to == State::Deferred;
    case State::Done:
    case State::NeedsHuman:
    case State::Failed:
    case State::Deferred:
      return false;
  }
  return false;
}

const char* to_string(State s) {
  switch (s) {
    case State::Listed:
      return "listed";
    case State::Copying:
      return "copying";
    case State::Verified:
      return "verified";
    case State::Restamping:
      return "restamping";
    case State::Rewriting:
      return "rewriting";
    case State::Rewritten:
      return "rewritten";
    case State::Resolving:
      return "resolving";
    case State::Done:
      return "done";
    case State::NeedsHuman:
      return "needs_human";
    case State::Failed:
      return "failed";
    case State::Deferred:
      return "deferred";
  }
  return "?";
}

}  // namespace assetmv::engine
