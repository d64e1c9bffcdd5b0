// OpenPostgresManifestStore until the libpq implementation is built in: every DSN is refused with
// InvalidArgument, so --manifest-store postgresql://… fails clearly instead of being ignored.
#include <fmt/format.h>

#include "common/url_redact.h"
#include "shardvec/manifest_store.h"

namespace shardvec {

Result<std::unique_ptr<ManifestStore>> OpenPostgresManifestStore(std::string_view dsn,
                                                                 const PostgresManifestStoreOptions&) {
  return Status::InvalidArgument(fmt::format(
      "manifest store '{}': this build has no PostgreSQL manifest store", RedactUrlUserinfo(dsn)));
}

}  // namespace shardvec
