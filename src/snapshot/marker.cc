#include "snapshot/marker.h"

#include <unistd.h>

#include "common/json_text.h"
#include "common/random_id.h"
#include "common/time_util.h"

namespace shardvec {

std::string ClaimMarker(nlohmann::json fields) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  fields["host"] = host;
  fields["pid"] = getpid();
  fields["nonce"] = NewUuidHex();
  fields["claimed_at"] = FormatTimestamp(NowUtc());
  return SafeJsonDump(fields);  // a host name is not necessarily UTF-8
}

}  // namespace shardvec
