/* The C macros of frameline.h: spans (static and run-time names), a log with arguments,
 * metrics and frames. Read back by instrument/capi/tests/cpp_game.rs.
 *
 *   gcc -std=c11 -Iinstrument/capi/include c_game.c libframeline_capi.a -lpthread -ldl -lm
 */
#define FL_TARGET "cgame"
#include "frameline.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (fl_init(argv[1], NULL) != FL_OK) return 1;
    fl_set_thread_name("c-main");
    for (int frame = 0; frame < 2; ++frame) {
        FL_FRAME(); /* @c_frame */
        FL_SPAN_BEGIN("c.update"); /* @c_update */
        FL_SPAN_BEGIN_NAMED(frame == 0 ? "c.first" : "c.second"); /* @c_named */
        FL_SPAN_END();
        FL_SPAN_END();
        FL_METRIC_INT("c.count", "count", 40 + frame); /* @c_count */
        FL_METRIC_FLOAT("c.ratio", "ratio", 0.25 * frame); /* @c_ratio */
    }
    FL_LOG_INFO("c says {} {} {} {} {}", /* @c_log */
                FL_I64(-3), FL_U64(4), FL_F64(1.5), FL_STR("hi"), FL_BOOL(1));
    FL_LOG_WARN("no arguments"); /* @c_log0 */
    fl_shutdown();
    return 0;
}
