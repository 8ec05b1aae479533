// frameline.hpp: C++ on top of frameline.h (C++11 or later).
//
//   FL_SCOPE("physics");                 // a span to the end of the scope
//   FL_SCOPE_NAMED(pass.name);           // its name known at run time (std::string, const char*)
//   FL_FRAME();                          // a frame boundary
//   FL_LOG_INFO("loaded {} in {} ms", name, ms);  // `{}` templates, arguments stored as values
//   FL_METRIC_INT("entities", "count", n); FL_METRIC_FLOAT("dt", "ms", dt);
//   fl::Session session("./capture");    // fl_init / fl_shutdown (or call them directly)
//
// Log arguments may be any integer, float, double, bool, char, const char*, std::string or
// std::string_view; anything else is refused at compile time (format it into a string first).
#ifndef FRAMELINE_HPP
#define FRAMELINE_HPP

#include "frameline.h"

#include <cstring>
#include <string>
#include <type_traits>
#if __cplusplus >= 201703L
#include <string_view>
#endif

namespace fl {

// Ends its span when destroyed.
class Scope {
  public:
    explicit Scope(const fl_span_desc *desc) noexcept { fl_span_begin(desc); }
    Scope(const fl_span_desc *desc, const char *name, size_t len) noexcept {
        fl_span_begin_named(desc, name, len);
    }
    ~Scope() { fl_span_end(); }
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;
};

// fl_init in its constructor (check ok()), fl_shutdown in its destructor.
class Session {
  public:
    explicit Session(const char *lake, const fl_options *options = nullptr) noexcept
        : status_(fl_init(lake, options)) {}
    ~Session() {
        if (status_ == FL_OK) fl_shutdown();
    }
    bool ok() const noexcept { return status_ == FL_OK; }
    int status() const noexcept { return status_; }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

  private:
    int status_;
};

namespace detail {

inline fl_arg make_u64(uint64_t v) noexcept {
    fl_arg a;
    a.kind = FL_ARG_U64;
    a.len = 0;
    a.value.u = v;
    return a;
}
inline fl_arg make_i64(int64_t v) noexcept {
    fl_arg a;
    a.kind = FL_ARG_I64;
    a.len = 0;
    a.value.i = v;
    return a;
}
inline fl_arg make_f(uint32_t kind, double v) noexcept {
    fl_arg a;
    a.kind = kind;
    a.len = 0;
    a.value.f = v;
    return a;
}
inline fl_arg make_str(const char *s, size_t len) noexcept {
    fl_arg a;
    a.kind = FL_ARG_STR;
    a.len = static_cast<uint32_t>(len > 0xffffffffu ? 0xffffffffu : len);
    a.value.s = s;
    return a;
}

inline fl_arg to_arg(bool v) noexcept {
    fl_arg a = make_u64(v ? 1 : 0);
    a.kind = FL_ARG_BOOL;
    return a;
}
inline fl_arg to_arg(char v) noexcept {
    fl_arg a = make_u64(static_cast<unsigned char>(v));
    a.kind = FL_ARG_CHAR;
    return a;
}
inline fl_arg to_arg(float v) noexcept { return make_f(FL_ARG_F32, v); }
inline fl_arg to_arg(double v) noexcept { return make_f(FL_ARG_F64, v); }
inline fl_arg to_arg(long double v) noexcept { return make_f(FL_ARG_F64, static_cast<double>(v)); }
inline fl_arg to_arg(const char *v) noexcept { return make_str(v, v ? std::strlen(v) : 0); }
inline fl_arg to_arg(char *v) noexcept { return to_arg(static_cast<const char *>(v)); }
inline fl_arg to_arg(const std::string &v) noexcept { return make_str(v.data(), v.size()); }
#if __cplusplus >= 201703L
inline fl_arg to_arg(std::string_view v) noexcept { return make_str(v.data(), v.size()); }
#endif
template <class T,
          typename std::enable_if<std::is_integral<T>::value && std::is_signed<T>::value &&
                                      !std::is_same<T, char>::value,
                                  int>::type = 0>
inline fl_arg to_arg(T v) noexcept {
    return make_i64(static_cast<int64_t>(v));
}
template <class T,
          typename std::enable_if<std::is_integral<T>::value && std::is_unsigned<T>::value &&
                                      !std::is_same<T, bool>::value,
                                  int>::type = 0>
inline fl_arg to_arg(T v) noexcept {
    return make_u64(static_cast<uint64_t>(v));
}

// The template is in the descriptor; it is passed again only to split the macro's arguments.
template <class... Args>
inline void log(const fl_log_desc *desc, const char *, const Args &...args) noexcept {
    static_assert(sizeof...(Args) <= 127, "at most 127 log arguments");
    const fl_arg list[sizeof...(Args) + 1] = {to_arg(args)..., make_u64(0)};
    fl_log(desc, list, sizeof...(Args));
}

} // namespace detail
} // namespace fl

// A span from here to the end of the enclosing scope.
#define FL_SCOPE(name_literal)                                                                    \
    static const fl_span_desc FL_UNIQUE(fl_desc_) = {name_literal, FL_TARGET, __FILE__, __LINE__}; \
    ::fl::Scope FL_UNIQUE(fl_scope_)(&FL_UNIQUE(fl_desc_))

// A span named at run time (anything with data() and size(), or a C string), to the end of
// the enclosing scope. The name is copied.
#define FL_SCOPE_NAMED(name)                                                                      \
    static const fl_span_desc FL_UNIQUE(fl_desc_) = {"", FL_TARGET, __FILE__, __LINE__};         \
    const ::fl_arg FL_UNIQUE(fl_name_) = ::fl::detail::to_arg(name);                              \
    ::fl::Scope FL_UNIQUE(fl_scope_)(&FL_UNIQUE(fl_desc_), FL_UNIQUE(fl_name_).value.s,           \
                                     FL_UNIQUE(fl_name_).len)

#define FL_FL_FIRST_(first, ...) first
// FL_LOG(level, "template {}", args...): the template, then its arguments.
#define FL_LOG(level_value, ...)                                                                  \
    do {                                                                                          \
        static const fl_log_desc fl_desc_ = {FL_TARGET, FL_FL_FIRST_(__VA_ARGS__, 0), __FILE__,   \
                                             __LINE__, (level_value)};                            \
        if (fl_log_enabled(level_value)) ::fl::detail::log(&fl_desc_, __VA_ARGS__);              \
    } while (0)
#define FL_LOG_ERROR(...) FL_LOG(FL_LEVEL_ERROR, __VA_ARGS__)
#define FL_LOG_WARN(...) FL_LOG(FL_LEVEL_WARN, __VA_ARGS__)
#define FL_LOG_INFO(...) FL_LOG(FL_LEVEL_INFO, __VA_ARGS__)
#define FL_LOG_DEBUG(...) FL_LOG(FL_LEVEL_DEBUG, __VA_ARGS__)
#define FL_LOG_TRACE(...) FL_LOG(FL_LEVEL_TRACE, __VA_ARGS__)

#endif // FRAMELINE_HPP
