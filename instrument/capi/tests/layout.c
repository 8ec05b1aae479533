/* Prints the layout of every struct of frameline.h, for tests/header.rs to compare with the
 * Rust definitions: "name size align" then "name.field offset" lines. */
#include "frameline.h"

#include <stdalign.h>
#include <stdio.h>

#define TYPE(t) printf(#t " %zu %zu\n", sizeof(t), alignof(t))
#define FIELD(t, f) printf(#t "." #f " %zu\n", offsetof(t, f))

int main(void) {
    TYPE(fl_span_desc);
    FIELD(fl_span_desc, name);
    FIELD(fl_span_desc, target);
    FIELD(fl_span_desc, file);
    FIELD(fl_span_desc, line);
    TYPE(fl_log_desc);
    FIELD(fl_log_desc, target);
    FIELD(fl_log_desc, template_);
    FIELD(fl_log_desc, file);
    FIELD(fl_log_desc, line);
    FIELD(fl_log_desc, level);
    TYPE(fl_metric_desc);
    FIELD(fl_metric_desc, name);
    FIELD(fl_metric_desc, unit);
    FIELD(fl_metric_desc, target);
    FIELD(fl_metric_desc, file);
    FIELD(fl_metric_desc, line);
    FIELD(fl_metric_desc, kind);
    TYPE(fl_arg);
    FIELD(fl_arg, kind);
    FIELD(fl_arg, len);
    FIELD(fl_arg, value);
    TYPE(fl_property);
    FIELD(fl_property, key);
    FIELD(fl_property, value);
    TYPE(fl_options);
    FIELD(fl_options, exe);
    FIELD(fl_options, max_level);
    FIELD(fl_options, flight_recorder);
    FIELD(fl_options, no_error_trigger);
    FIELD(fl_options, flush_on_panic);
    FIELD(fl_options, flush_interval_ms);
    FIELD(fl_options, frame_threshold_us);
    FIELD(fl_options, before_ms);
    FIELD(fl_options, after_ms);
    FIELD(fl_options, shutdown_timeout_ms);
    FIELD(fl_options, ring_bytes);
    FIELD(fl_options, properties);
    FIELD(fl_options, property_count);
    /* Constants shared with the library. */
    printf("FL_OK %d\nFL_ERROR_ALREADY_INITIALIZED %d\nFL_ERROR_ARGUMENT %d\nFL_ERROR_LAKE %d\n",
           FL_OK, FL_ERROR_ALREADY_INITIALIZED, FL_ERROR_ARGUMENT, FL_ERROR_LAKE);
    printf("FL_ARG_U64 %d\nFL_ARG_I64 %d\nFL_ARG_F64 %d\nFL_ARG_F32 %d\nFL_ARG_BOOL %d\n"
           "FL_ARG_CHAR %d\nFL_ARG_STR %d\n",
           FL_ARG_U64, FL_ARG_I64, FL_ARG_F64, FL_ARG_F32, FL_ARG_BOOL, FL_ARG_CHAR, FL_ARG_STR);
    printf("FL_LEVEL_ERROR %d\nFL_LEVEL_TRACE %d\nFL_KIND_INTEGER %d\nFL_KIND_FLOAT %d\n"
           "FL_KIND_FRAME %d\n",
           FL_LEVEL_ERROR, FL_LEVEL_TRACE, FL_KIND_INTEGER, FL_KIND_FLOAT, FL_KIND_FRAME);
    return 0;
}
