/*
 * frameline.h: record spans, logs, metrics and frame markers from C (and C++) into a Frameline
 * lake. Link libframeline_capi.a (and -lpthread -ldl -lm on Linux). C++ code includes
 * frameline.hpp instead, which adds RAII scopes and typed logs.
 *
 * Every call site is a `static` descriptor declared by the macros below; its address is the
 * event's reference, so recording an event writes a timestamp and that address, nothing else.
 * Strings in descriptors must be string literals (they are read later by the flush thread).
 *
 * Logs use `{}` templates, as in Rust: FL_LOG_INFO("loaded {} in {} ms", FL_STR(name),
 * FL_F64(ms)). Arguments are stored as values (integers, floats, booleans, characters,
 * strings) and rendered by the reader. At most 127 arguments.
 *
 * Written by hand; instrument/capi/tests/header.rs fails if it drifts from the library (every
 * exported function with its exact prototype, every struct's layout).
 */
#ifndef FRAMELINE_H
#define FRAMELINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define FL_ALIGN8 alignas(8)
#define FL_ALIGNOF(type) alignof(type)
#define FL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
extern "C" {
#else
#define FL_ALIGN8 _Alignas(8)
#define FL_ALIGNOF(type) _Alignof(type)
#define FL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* What the events of a translation unit are filed under; define it before including. */
#ifndef FL_TARGET
#define FL_TARGET "native"
#endif

/* Log levels, most severe first. */
#define FL_LEVEL_ERROR 1
#define FL_LEVEL_WARN 2
#define FL_LEVEL_INFO 3
#define FL_LEVEL_DEBUG 4
#define FL_LEVEL_TRACE 5

/* Metric kinds. */
#define FL_KIND_INTEGER 0
#define FL_KIND_FLOAT 1
#define FL_KIND_FRAME 2

/* fl_init results. */
#define FL_OK 0
#define FL_ERROR_ALREADY_INITIALIZED 1
#define FL_ERROR_ARGUMENT 2
#define FL_ERROR_LAKE 3

/* Log argument types (fl_arg.kind). */
#define FL_ARG_U64 1
#define FL_ARG_I64 2
#define FL_ARG_F64 3
#define FL_ARG_F32 4
#define FL_ARG_BOOL 5
#define FL_ARG_CHAR 6
#define FL_ARG_STR 7

/* A span call site. Aligned to 8: the low three bits of its address tag the event. */
typedef struct fl_span_desc {
    FL_ALIGN8 const char *name;
    const char *target;
    const char *file;
    uint32_t line;
} fl_span_desc;

/* A log call site; `level` is an FL_LEVEL_*. */
typedef struct fl_log_desc {
    FL_ALIGN8 const char *target;
    const char *template_;
    const char *file;
    uint32_t line;
    uint8_t level;
} fl_log_desc;

/* A metric or frame call site; `kind` is an FL_KIND_*. */
typedef struct fl_metric_desc {
    FL_ALIGN8 const char *name;
    const char *unit;
    const char *target;
    const char *file;
    uint32_t line;
    uint8_t kind;
} fl_metric_desc;

FL_STATIC_ASSERT(FL_ALIGNOF(fl_span_desc) == 8, "fl_span_desc must be 8-aligned");
FL_STATIC_ASSERT(FL_ALIGNOF(fl_log_desc) == 8, "fl_log_desc must be 8-aligned");
FL_STATIC_ASSERT(FL_ALIGNOF(fl_metric_desc) == 8, "fl_metric_desc must be 8-aligned");

/* A log argument: `kind` is an FL_ARG_*, `len` a string's length in bytes. */
typedef struct fl_arg {
    uint32_t kind;
    uint32_t len;
    union {
        uint64_t u;
        int64_t i;
        double f;
        const char *s;
    } value;
} fl_arg;

/* A process property (build, map, GPU, ...). */
typedef struct fl_property {
    const char *key;
    const char *value;
} fl_property;

/* Options of fl_init; zero-initialize, then set what differs from the defaults. */
typedef struct fl_options {
    const char *exe;             /* program name (NULL: the executable's file name) */
    uint8_t max_level;           /* most verbose level recorded, FL_LEVEL_* (0: info) */
    uint8_t flight_recorder;     /* non-zero: keep CPU blocks only around triggers */
    uint8_t no_error_trigger;    /* non-zero: error logs do not trigger the flight recorder */
    uint8_t flush_on_panic;      /* non-zero: a Rust panic in the process flushes first */
    uint32_t flush_interval_ms;  /* how often events are collected (0: 1000) */
    uint32_t frame_threshold_us; /* flight recorder: a longer frame triggers (0: 33400) */
    uint32_t before_ms;          /* flight recorder: kept before a trigger (0: 2000) */
    uint32_t after_ms;           /* flight recorder: kept after a trigger (0: 500) */
    uint32_t shutdown_timeout_ms; /* longest fl_shutdown / fl_flush wait; then queued blocks are
                                     dropped and counted (0: 3000) */
    uint64_t ring_bytes;         /* flight recorder: most CPU bytes held (0: 16 MiB) */
    const fl_property *properties;
    size_t property_count;
} fl_options;

/* Starts recording into `lake` (a folder). `options` may be NULL. Returns FL_OK or an
 * FL_ERROR_* whose text fl_last_error gives. */
int fl_init(const char *lake, const fl_options *options);
/* Flushes everything and ends the session, waiting at most the shutdown timeout. */
void fl_shutdown(void);
/* Copies the last fl_init error (NUL-terminated, cut to `size`); returns its full length. */
size_t fl_last_error(char *buffer, size_t size);

void fl_span_begin(const fl_span_desc *desc);
/* `name` is `len` bytes of UTF-8 (copied). */
void fl_span_begin_named(const fl_span_desc *desc, const char *name, size_t len);
void fl_span_end(void);
void fl_metric_int(const fl_metric_desc *desc, uint64_t value);
void fl_metric_float(const fl_metric_desc *desc, double value);
void fl_frame(const fl_metric_desc *desc);
int fl_log_enabled(uint8_t level);
void fl_log(const fl_log_desc *desc, const fl_arg *args, size_t count);
/* Writes what every thread recorded so far, waiting at most the shutdown timeout: 1 if all of
 * it was written in time, 0 otherwise (or no session). */
int fl_flush(void);
/* Asks the flight recorder to keep the seconds around now. */
void fl_capture_now(void);
/* Names the calling thread in the lake. */
void fl_set_thread_name(const char *name);

#ifdef __cplusplus
}
#endif

#define FL_CONCAT_(a, b) a##b
#define FL_CONCAT(a, b) FL_CONCAT_(a, b)
#define FL_UNIQUE(prefix) FL_CONCAT(prefix, __LINE__)

/* A span in C: FL_SPAN_BEGIN("name"); ... FL_SPAN_END(); (spans nest per thread). */
#define FL_SPAN_BEGIN(name_literal)                                                               \
    do {                                                                                          \
        static const fl_span_desc fl_desc_ = {name_literal, FL_TARGET, __FILE__, __LINE__};       \
        fl_span_begin(&fl_desc_);                                                                 \
    } while (0)
#define FL_SPAN_END() fl_span_end()

/* A span whose name is a run-time NUL-terminated string. */
#define FL_SPAN_BEGIN_NAMED(name_cstr)                                                            \
    do {                                                                                          \
        static const fl_span_desc fl_desc_ = {"", FL_TARGET, __FILE__, __LINE__};                 \
        const char *fl_name_ = (name_cstr);                                                       \
        size_t fl_len_ = 0;                                                                       \
        while (fl_name_ && fl_name_[fl_len_]) ++fl_len_;                                          \
        fl_span_begin_named(&fl_desc_, fl_name_, fl_len_);                                        \
    } while (0)

/* FL_METRIC_INT("name", "unit", value), FL_METRIC_FLOAT("name", "unit", value). */
#define FL_METRIC_INT(name_literal, unit_literal, value)                                          \
    do {                                                                                          \
        static const fl_metric_desc fl_desc_ = {name_literal,  unit_literal, FL_TARGET,           \
                                                __FILE__,      __LINE__,     FL_KIND_INTEGER};  \
        fl_metric_int(&fl_desc_, (uint64_t)(value));                                              \
    } while (0)
#define FL_METRIC_FLOAT(name_literal, unit_literal, value)                                        \
    do {                                                                                          \
        static const fl_metric_desc fl_desc_ = {name_literal, unit_literal, FL_TARGET,            \
                                                __FILE__,     __LINE__,     FL_KIND_FLOAT};     \
        fl_metric_float(&fl_desc_, (double)(value));                                              \
    } while (0)

/* FL_FRAME(): the main frame's boundary; FL_FRAME_NAMED("render") for another frame set. */
#define FL_FRAME_NAMED(name_literal)                                                              \
    do {                                                                                          \
        static const fl_metric_desc fl_desc_ = {name_literal, "ticks",  FL_TARGET,                \
                                                __FILE__,     __LINE__, FL_KIND_FRAME};         \
        fl_frame(&fl_desc_);                                                                      \
    } while (0)
#define FL_FRAME() FL_FRAME_NAMED("frame")

#ifndef __cplusplus
/* C log arguments (C++ passes values directly, see frameline.hpp). */
#define FL_U64(x) ((fl_arg){FL_ARG_U64, 0, {.u = (uint64_t)(x)}})
#define FL_I64(x) ((fl_arg){FL_ARG_I64, 0, {.i = (int64_t)(x)}})
#define FL_F64(x) ((fl_arg){FL_ARG_F64, 0, {.f = (double)(x)}})
#define FL_BOOL(x) ((fl_arg){FL_ARG_BOOL, 0, {.u = (x) ? 1u : 0u}})
#define FL_CHAR(x) ((fl_arg){FL_ARG_CHAR, 0, {.u = (uint64_t)(x)}})
/* A NUL-terminated string (its length is measured). */
#define FL_STR(x) fl_str_arg_(x)
static inline fl_arg fl_str_arg_(const char *s) {
    fl_arg arg = {FL_ARG_STR, 0, {.s = s}};
    while (s && s[arg.len]) ++arg.len;
    return arg;
}

#define FL_ARG_SENTINEL_ ((fl_arg){0, 0, {.u = 0}})
#define FL_FIRST_(first, ...) first
#define FL_REST_(first, ...) __VA_ARGS__
/* FL_LOG(level, "template {}", FL_I64(x), ...): the template, then its arguments. */
#define FL_LOG(level_value, ...)                                                                  \
    do {                                                                                          \
        static const fl_log_desc fl_desc_ = {FL_TARGET, FL_FIRST_(__VA_ARGS__, 0), __FILE__,      \
                                             __LINE__, (level_value)};                            \
        if (fl_log_enabled(level_value)) {                                                        \
            const fl_arg fl_args_[] = {FL_REST_(__VA_ARGS__, FL_ARG_SENTINEL_)};                  \
            fl_log(&fl_desc_, fl_args_, sizeof(fl_args_) / sizeof(fl_args_[0]) - 1);              \
        }                                                                                         \
    } while (0)
#define FL_LOG_ERROR(...) FL_LOG(FL_LEVEL_ERROR, __VA_ARGS__)
#define FL_LOG_WARN(...) FL_LOG(FL_LEVEL_WARN, __VA_ARGS__)
#define FL_LOG_INFO(...) FL_LOG(FL_LEVEL_INFO, __VA_ARGS__)
#define FL_LOG_DEBUG(...) FL_LOG(FL_LEVEL_DEBUG, __VA_ARGS__)
#define FL_LOG_TRACE(...) FL_LOG(FL_LEVEL_TRACE, __VA_ARGS__)
#endif

#endif /* FRAMELINE_H */
