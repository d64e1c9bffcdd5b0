// WriteExpositionFile: the Prometheus text of a collector written atomically to a file.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/file_util.h"
#include "shardvec/metrics.h"

namespace shardvec {

Status WriteExpositionFile(const PrometheusCollector& collector, const std::filesystem::path& path) {
  const std::filesystem::path staged = TempSiblingPath(path);
  Status st = WriteFileSynced(staged, collector.Exposition());
  if (st.ok() && std::rename(staged.c_str(), path.c_str()) != 0) {
    st = Status::IOError("'" + path.string() + "': cannot rename into place: " + std::strerror(errno));
  }
  if (!st.ok()) std::remove(staged.c_str());
  return st;
}

}  // namespace shardvec
