// CEL entry points for Python: the differential tests evaluate expressions through these.
#include <memory>

#include "engine_common.h"
#include "routing/cel/cel.h"

namespace shardvec::py {
namespace {

nb::object ValueToPython(const cel::Value& v) {
  switch (v.type) {
    case cel::Type::kNull: return nb::none();
    case cel::Type::kBool: return nb::bool_(v.b);
    case cel::Type::kInt: return nb::int_(v.i);
    case cel::Type::kUint: return nb::steal(PyLong_FromUnsignedLongLong(v.u));
    case cel::Type::kDouble: return nb::float_(v.d);
    case cel::Type::kString: return TextToPython(v.s);
    case cel::Type::kBytes: return nb::bytes(v.s.data(), v.s.size());
    default: return nb::none();  // lists: only the type name is reported
  }
}

std::shared_ptr<const cel::Program> CompileOrRaise(const std::string& expr,
                                                  const std::map<std::string, std::string>& columns) {
  auto program = cel::Program::Compile(expr, columns);
  if (!program.ok()) throw nb::value_error(("compile: " + program.status().message()).c_str());
  return std::move(program).value();
}

nb::tuple CelEvaluate(const std::string& expr, const std::map<std::string, std::string>& columns, nb::handle context) {
  const std::shared_ptr<const cel::Program> program = CompileOrRaise(expr, columns);
  const RoutingContext ctx = context.is_none() ? RoutingContext{} : RoutingContextFromPython(context, "context");
  std::vector<cel::Value> slots(program->variables().size());
  if (Status s = program->Bind(ctx, slots); !s.ok()) throw nb::value_error(("bind: " + s.message()).c_str());
  cel::Scratch scratch;
  auto value = program->Evaluate(slots, scratch);
  if (!value.ok()) throw nb::value_error(("eval: " + value.status().message()).c_str());
  return nb::make_tuple(std::string(cel::TypeName(value->type)), ValueToPython(*value));
}

uint64_t CelShardHash(nb::handle value) {
  const RoutingValue v = RoutingValueFromPython(value, "value");
  if (const auto* i = std::get_if<int64_t>(&v)) return cel::ShardHashInt(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return cel::ShardHashBytes(*s);
  if (const auto* b = std::get_if<Bytes>(&v)) return cel::ShardHashBytes(b->data);
  throw nb::value_error("shard_hash takes an int in the int64 range, a str or bytes");
}

}  // namespace

void BindCel(nb::module_& m) {
  m.def("cel_evaluate", &CelEvaluate, nb::arg("expr"), nb::arg("columns"), nb::arg("context").none() = nb::none(),
        "Compiles `expr` with variables `columns` ({name: 'int'|'uint'|'double'|'string'|'bytes'|'bool'}),\n"
        "binds `context` (dict) and evaluates it. Returns (type_name, value): type_name is the result's CEL\n"
        "type ('int', 'uint', 'double', 'string', 'bytes', 'bool', 'null_type', 'list'); value is a Python\n"
        "int/float/str/bytes/bool/None (None for lists). Raises ValueError whose message starts with\n"
        "'compile: ' (parse/type errors), 'bind: ' (a context value of the wrong type) or 'eval: ' (runtime\n"
        "errors such as division by zero or overflow).");
  m.def("cel_compile_type", [](const std::string& expr, const std::map<std::string, std::string>& columns) {
        return std::string(cel::TypeName(CompileOrRaise(expr, columns)->result_type()));
      }, nb::arg("expr"), nb::arg("columns"),
      "The result type name of `expr` (see cel_evaluate), or ValueError('compile: ...').");
  m.def("cel_shard_hash", &CelShardHash, nb::arg("value"),
        "shard_hash(value) for an int (int64 range), str or bytes: xxh3_64 (seed 0) of its canonical bytes.");
}

}  // namespace shardvec::py
