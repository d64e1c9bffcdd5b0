// The public CEL helpers of shardvec/cel.h, over the CEL compiler and the manifest's JSON forms.
#include "shardvec/cel.h"

#include "common/json_text.h"
#include "format/routing_json.h"
#include "routing/cel/cel.h"

namespace shardvec {

Status CheckCelColumnType(std::string_view type, std::string_view field) {
  return cel::ParseColumnType(type, field).status();
}

Result<std::string> CelResultType(std::string_view expr, const std::map<std::string, std::string>& columns) {
  Result<std::shared_ptr<const cel::Program>> program = cel::Program::Compile(expr, columns);
  if (!program.ok()) return program.status();
  return std::string(cel::TypeName((*program)->result_type()));
}

std::string RoutingValuesJsonText(const std::vector<RoutingValue>& values) {
  return SafeJsonDump(RoutingValuesToJson(values));
}

}  // namespace shardvec
