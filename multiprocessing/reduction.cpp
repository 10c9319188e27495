// multiprocessing/reduction.cpp
// Mirrors the value side of CPython 3.11 Lib/multiprocessing/reduction.py; see
// reduction.hpp.  Python's repr() rules are reproduced so that a C++ program prints
// lists and dicts the way the Python lessons print them.
#include "multiprocessing/reduction.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace multiprocessing {

namespace {

std::string repr_str(const std::string& s) {
  // Python picks single quotes unless the text holds one and no double quote.
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);  // UTF-8 text passes through as Python prints it
        }
    }
  }
  out += quote;
  return out;
}

std::string repr_bytes(const std::string& b) {
  bool has_single = b.find('\'') != std::string::npos;
  bool has_double = b.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (unsigned char c : b) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(quote)) { out += '\\'; out += static_cast<char>(c); }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string repr_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Python's repr is the shortest text that reads back to the same double.
  char buffer[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, d);
    if (std::strtod(buffer, nullptr) == d) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".eni") == std::string::npos) text += ".0";
  return text;
}

}  // namespace

const char* Object::type_name() const noexcept {
  static constexpr const char* names[] = {"NoneType", "bool",  "int",   "float", "str",
                                          "bytes",    "list",  "tuple", "dict"};
  return names[value_.index()];
}

std::string Object::repr() const {
  struct Printer {
    std::string operator()(None) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return repr_float(d); }
    std::string operator()(const std::string& s) const { return repr_str(s); }
    std::string operator()(const Bytes& b) const { return repr_bytes(b.data); }
    std::string operator()(const List& l) const {
      std::string out = "[";
      for (std::size_t i = 0; i < l.size(); ++i) out += (i ? ", " : "") + l[i].repr();
      return out + "]";
    }
    std::string operator()(const Tuple& t) const {
      std::string out = "(";
      for (std::size_t i = 0; i < t.items.size(); ++i) out += (i ? ", " : "") + t.items[i].repr();
      return out + (t.items.size() == 1 ? ",)" : ")");
    }
    std::string operator()(const Dict& d) const {
      std::string out = "{";
      for (std::size_t i = 0; i < d.size(); ++i) {
        out += (i ? ", " : "") + d[i].first.repr() + ": " + d[i].second.repr();
      }
      return out + "}";
    }
  };
  return std::visit(Printer{}, value_);
}

void Object::type_mismatch(const char* expected) const {
  throw TypeError(std::string("expected ") + expected + ", got " + type_name());
}

bool Convert<bool>::from_object(const Object& o) {
  if (const bool* b = std::get_if<bool>(&o.variant())) return *b;
  o.type_mismatch("bool");
}

std::int64_t Convert<std::int64_t>::from_object(const Object& o) {
  if (const std::int64_t* i = std::get_if<std::int64_t>(&o.variant())) return *i;
  // Python's bool is an int subclass: True counts as 1 wherever an int is expected.
  if (const bool* b = std::get_if<bool>(&o.variant())) return *b ? 1 : 0;
  o.type_mismatch("int");
}

std::string Convert<std::string>::from_object(const Object& o) {
  if (const std::string* s = std::get_if<std::string>(&o.variant())) return *s;
  o.type_mismatch("str");
}

Bytes Convert<Bytes>::from_object(const Object& o) {
  if (const Bytes* b = std::get_if<Bytes>(&o.variant())) return *b;
  o.type_mismatch("bytes");
}

None Convert<None>::from_object(const Object& o) {
  if (o.is_none()) return None{};
  o.type_mismatch("None");
}

}  // namespace multiprocessing
