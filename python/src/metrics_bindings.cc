#include "metrics_bindings.h"

#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>

#include <stdexcept>
#include <string>

namespace shardvec::py {
namespace {

nb::dict PayloadToPython(const MetricPayload& payload) {
  nb::dict d;
  for (const auto& [key, value] : payload) {
    nb::str k(key.data(), key.size());
    if (const auto* i = std::get_if<int64_t>(&value)) d[k] = nb::int_(*i);
    else if (const auto* f = std::get_if<double>(&value)) d[k] = nb::float_(*f);
    else {
      const std::string& s = std::get<std::string>(value);
      d[k] = nb::str(s.data(), s.size());
    }
  }
  return d;
}

MetricPayload PayloadFromPython(const nb::dict& d) {
  MetricPayload payload;
  for (auto [key, value] : d) {
    std::string k = nb::cast<std::string>(nb::str(key));
    if (nb::isinstance<nb::bool_>(value)) payload[k] = int64_t{nb::cast<bool>(value)};
    else if (nb::isinstance<nb::int_>(value)) payload[k] = nb::cast<int64_t>(value);
    else if (nb::isinstance<nb::float_>(value)) payload[k] = nb::cast<double>(value);
    else payload[k] = nb::cast<std::string>(nb::str(value));
  }
  return payload;
}

// Holds a bound emit method; every touch of the Python object happens with the GIL held.
class PythonSink final : public MetricsSink {
 public:
  explicit PythonSink(nb::handle collector)
      : collector_(nb::borrow(collector)), emit_(collector.attr("emit")) {}
  // The object whose emit this calls (call with the GIL held).
  const nb::object& collector() const { return collector_; }
  ~PythonSink() override {
    if (!Py_IsInitialized()) {
      emit_.release();  // the interpreter is gone: leak the references rather than touch them
      collector_.release();
      return;
    }
    nb::gil_scoped_acquire gil;
    emit_.reset();
    collector_.reset();
  }

  void Emit(std::string_view event, const MetricPayload& payload) override {
    std::string error;
    {
      nb::gil_scoped_acquire gil;
      try {
        emit_(nb::str(event.data(), event.size()), PayloadToPython(payload));
        return;
      } catch (nb::python_error& e) {
        error = e.what();  // the Python exception is dropped here, with the GIL held
      }
    }
    throw std::runtime_error(error);  // EmitMetric logs it as metrics_sink_failed
  }

 private:
  nb::object collector_;
  nb::object emit_;
};

}  // namespace

std::shared_ptr<MetricsSink> SinkFromPython(nb::handle collector) {
  if (!collector.is_valid() || collector.is_none()) return nullptr;
  if (nb::isinstance<PrometheusCollector>(collector)) return nb::cast<std::shared_ptr<PrometheusCollector>>(collector);
  if (!nb::hasattr(collector, "emit")) {
    throw nb::type_error("metrics_collector must have an emit(event, payload) method");
  }
  return std::make_shared<PythonSink>(collector);
}

nb::object SinkToPython(const std::shared_ptr<MetricsSink>& sink) {
  if (!sink) return nb::none();
  if (auto prometheus = std::dynamic_pointer_cast<PrometheusCollector>(sink)) return nb::cast(prometheus);
  if (auto* python = dynamic_cast<const PythonSink*>(sink.get())) return python->collector();
  return nb::none();
}

void BindMetrics(nb::module_& m) {
  nb::class_<PrometheusCollector>(m, "PrometheusCollector")
      .def(nb::init<std::string>(), nb::arg("prefix") = "shardvec_")
      .def(
          "emit",
          [](PrometheusCollector& self, const std::string& event, const nb::dict& payload) {
            self.Emit(event, PayloadFromPython(payload));
          },
          nb::arg("event"), nb::arg("payload"))
      .def("exposition", &PrometheusCollector::Exposition);
}

}  // namespace shardvec::py
