// Python <-> RoutingValue / RoutingContext conversions, shared by VectorRecord.routing_context,
// search(routing_context=...), routing_values and the CEL bindings. Self-contained on purpose.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "shardvec/types.h"

namespace shardvec::py {

namespace nb = nanobind;

// Engine text (ids, payloads, routing tokens, error messages) as a Python str. Bytes that are not
// UTF-8 (text read from a store someone else wrote) become U+FFFD: never a UnicodeDecodeError.
inline nb::str TextToPython(std::string_view text) {
  PyObject* str = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  if (str == nullptr) throw nb::python_error();
  return nb::steal<nb::str>(str);
}

// One Python value as a RoutingValue: None -> null, bool -> bool (before int: bool is an int
// subclass), int -> int64 if it fits else uint64 if it fits, float -> double, str -> string,
// bytes/bytearray -> Bytes. Anything else (or an int outside both ranges) is a ValueError naming `field`.
inline RoutingValue RoutingValueFromPython(nb::handle value, const std::string& field) {
  PyObject* o = value.ptr();
  if (o == Py_None) return std::monostate{};
  if (PyBool_Check(o)) return o == Py_True;
  if (PyLong_Check(o)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
      if (v == -1 && PyErr_Occurred()) throw nb::python_error();
      return static_cast<int64_t>(v);
    }
    if (overflow > 0) {
      const unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (!(u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) return static_cast<uint64_t>(u);
      PyErr_Clear();
    }
    const std::string text = nb::cast<std::string>(nb::str(value));
    throw nb::value_error((field + " is " + text + ", outside the int64 and uint64 ranges").c_str());
  }
  if (PyFloat_Check(o)) return PyFloat_AsDouble(o);
  if (PyUnicode_Check(o)) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(o, &size);
    if (!data) {
      // A lone surrogate (os.fsdecode of bytes that are not UTF-8): a ConfigValidationError, as the
      // writer's other text checks.
      PyErr_Clear();
      nb::object error = nb::module_::import_("shardvec.errors")
                             .attr("ConfigValidationError")(TextToPython(field + " is a str that is not valid UTF-8 (lone surrogate)"));
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
      throw nb::python_error();
    }
    return std::string(data, static_cast<size_t>(size));
  }
  if (PyBytes_Check(o)) {
    return Bytes{std::string(PyBytes_AsString(o), static_cast<size_t>(PyBytes_Size(o)))};
  }
  if (PyByteArray_Check(o)) {
    return Bytes{std::string(PyByteArray_AsString(o), static_cast<size_t>(PyByteArray_Size(o)))};
  }
  throw nb::value_error((field + " has unsupported type " + std::string(Py_TYPE(o)->tp_name) +
                         "; expected None, bool, int, float, str or bytes")
                            .c_str());
}

inline nb::object RoutingValueToPython(const RoutingValue& v) {
  struct Visitor {
    nb::object operator()(std::monostate) const { return nb::none(); }
    nb::object operator()(bool b) const { return nb::bool_(b); }
    nb::object operator()(int64_t i) const { return nb::int_(i); }
    nb::object operator()(uint64_t u) const { return nb::steal(PyLong_FromUnsignedLongLong(u)); }
    nb::object operator()(double d) const { return nb::float_(d); }
    nb::object operator()(const std::string& s) const { return TextToPython(s); }
    nb::object operator()(const Bytes& b) const { return nb::bytes(b.data.data(), b.data.size()); }
  };
  return std::visit(Visitor{}, v);
}

// A dict of variable name -> value. Keys must be str; errors name `field['key']` and the type.
inline RoutingContext RoutingContextFromPython(nb::handle dict, std::string_view field) {
  if (!PyDict_Check(dict.ptr())) {
    throw nb::value_error((std::string(field) + " must be a dict, got " + Py_TYPE(dict.ptr())->tp_name).c_str());
  }
  RoutingContext out;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(dict.ptr(), &pos, &key, &value)) {
    if (!PyUnicode_Check(key)) {
      const std::string repr = nb::cast<std::string>(nb::repr(nb::handle(key)));
      throw nb::value_error((std::string(field) + " has key " + repr + " of type " + Py_TYPE(key)->tp_name +
                             "; keys must be str")
                                .c_str());
    }
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(key, &size);
    if (!data) {
      PyErr_Clear();
      throw nb::value_error((std::string(field) + " has a key that is not valid UTF-8").c_str());
    }
    std::string name(data, static_cast<size_t>(size));
    RoutingValue v = RoutingValueFromPython(nb::handle(value), std::string(field) + "['" + name + "']");
    out.insert_or_assign(std::move(name), std::move(v));
  }
  return out;
}

}  // namespace shardvec::py
