// Binds a plain engine struct (a config, a plan, a shard info) as a Python class with typed fields.
// Each field is declared once; from that one list the class gets a keyword constructor that refuses
// a name it does not have, __getstate__ / __setstate__ (pickle, copy) over exactly those fields,
// __eq__ and __repr__ (credentials masked). A value of the wrong type is a TypeError naming the
// class and the field.
#pragma once

#include <nanobind/nanobind.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace shardvec::py {

namespace nb = nanobind;

template <typename T>
class StructBinding {
 public:
  StructBinding(nb::handle scope, const char* name, const char* doc)
      : cls_(scope, name, doc),
        name_(name),
        fields_(std::make_shared<std::vector<std::string>>()),
        secrets_(std::make_shared<std::vector<std::string>>()) {}

  // A member the engine reads or fills as it is (numbers, text, maps, nested bound structs).
  template <typename M>
  StructBinding& field(const char* name, M T::*member, const char* doc) {
    cls_.def_rw(name, member, doc);
    fields_->push_back(name);
    return *this;
  }
  // A credential: a field like the others, shown as '***' by repr when set.
  template <typename M>
  StructBinding& secret(const char* name, M T::*member, const char* doc) {
    secrets_->push_back(name);
    return field(name, member, doc);
  }
  // A member that needs a conversion (a matrix as a NumPy array, routing tokens, a metrics sink).
  template <typename Get, typename Set>
  StructBinding& property(const char* name, Get&& get, Set&& set, const char* doc) {
    cls_.def_prop_rw(name, std::forward<Get>(get), std::forward<Set>(set), doc);
    fields_->push_back(name);
    return *this;
  }

  // Adds the keyword constructor, equality, repr and (when `picklable`) the pickle protocol.
  nb::class_<T>& finish(bool picklable) {
    auto fields = fields_;
    auto secrets = secrets_;
    std::string name = name_;
    cls_.def(
        "__init__",
        [fields, name](nb::pointer_and_handle<T> v, const nb::kwargs& values) {
          Construct(v, fields, name, values);
        },
        "Every field starts at its default; a keyword sets one by name (an unknown name is a TypeError).");
    cls_.def("__eq__", [fields](nb::handle self, nb::handle other) {
      if (!nb::isinstance<T>(other)) return false;
      for (const std::string& f : *fields) {
        if (!SameValue(nb::getattr(self, f.c_str()), nb::getattr(other, f.c_str()))) return false;
      }
      return true;
    });
    cls_.attr("__hash__") = nb::none();
    cls_.def("__repr__", [fields, secrets, name](nb::handle self) {
      std::string text = name + "(";
      for (size_t i = 0; i < fields->size(); ++i) {
        const std::string& f = (*fields)[i];
        nb::object value = nb::getattr(self, f.c_str());
        const bool hidden = std::find(secrets->begin(), secrets->end(), f) != secrets->end() && PyObject_IsTrue(value.ptr()) == 1;
        text += (i ? ", " : "") + f + "=" + (hidden ? std::string("'***'") : nb::cast<std::string>(nb::repr(value)));
      }
      return text + ")";
    });
    if (picklable) {
      cls_.def("__getstate__", [fields](nb::handle self) { return State(self, *fields); },
               "The fields by name (what pickle ships to a worker).");
      cls_.def(
          "__setstate__",
          [fields, name](nb::pointer_and_handle<T> v, const nb::dict& state) { Construct(v, fields, name, state); },
          "Restores the fields __getstate__ returned.");
    }
    return cls_;
  }

 private:
  // Equal values; arrays (centroids, hyperplanes) element-wise and of the same shape.
  static bool SameValue(nb::handle a, nb::handle b) {
    if (nb::hasattr(a, "shape") || nb::hasattr(b, "shape")) {
      return nb::cast<bool>(nb::module_::import_("numpy").attr("array_equal")(a, b));
    }
    return a.equal(b);
  }

  static nb::dict State(nb::handle self, const std::vector<std::string>& fields) {
    nb::dict state;
    for (const std::string& f : fields) state[f.c_str()] = nb::getattr(self, f.c_str());
    return state;
  }

  static void Construct(nb::pointer_and_handle<T> v, const std::shared_ptr<std::vector<std::string>>& fields,
                        const std::string& name, const nb::dict& values) {
    new (v.p) T();
    nb::inst_mark_ready(v.h);  // the setters below need a constructed object
    for (auto [key, value] : values) {
      const std::string k = nb::cast<std::string>(nb::str(key));
      if (std::find(fields->begin(), fields->end(), k) == fields->end()) {
        std::string known;
        for (const std::string& f : *fields) known += (known.empty() ? "" : ", ") + f;
        throw nb::type_error((name + " has no field '" + k + "' (fields: " + known + ")").c_str());
      }
      try {
        nb::setattr(v.h, k.c_str(), value);
      } catch (nb::python_error& e) {
        // Only nanobind's own "incompatible function arguments" is replaced: a setter's own error
        // (e.g. a metrics collector without emit) already says what is wrong.
        const bool mismatch = e.matches(PyExc_TypeError) &&
                              std::string(e.what()).find("incompatible function arguments") != std::string::npos;
        if (!mismatch) throw;
        throw nb::type_error((name + "." + k + " cannot be " + nb::cast<std::string>(nb::repr(value)) + " (" +
                              nb::cast<std::string>(nb::str(nb::handle(Py_TYPE(value.ptr())).attr("__name__"))) +
                              ")")
                                 .c_str());
      }
    }
  }

  nb::class_<T> cls_;
  std::string name_;
  std::shared_ptr<std::vector<std::string>> fields_;
  std::shared_ptr<std::vector<std::string>> secrets_;
};

}  // namespace shardvec::py
