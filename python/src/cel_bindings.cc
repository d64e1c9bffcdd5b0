// CEL entry points for Python: the differential tests evaluate expressions through these.
#include "engine_common.h"

namespace shardvec::py {

void BindCel(nb::module_& m) {}

}  // namespace shardvec::py
