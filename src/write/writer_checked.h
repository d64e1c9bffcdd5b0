// WriteSharded with a check run right before the manifest is published: an update that rebuilds a
// whole snapshot (UpdateOptions::retrain) checks there that its base is still the current snapshot.
#pragma once

#include <functional>
#include <memory>

#include "shardvec/object_store.h"
#include "shardvec/records.h"
#include "shardvec/status.h"
#include "shardvec/writer.h"

namespace shardvec {

// As WriteSharded(config, records, store); an error from `before_publish` fails the build before
// its manifest is published (its uploads are then removed, as for any failed build).
Result<BuildResult> WriteShardedCheckingBeforePublish(const WriteConfig& config, RecordSource& records,
                                                      std::shared_ptr<ObjectStore> store,
                                                      std::function<Status()> before_publish);

}  // namespace shardvec
