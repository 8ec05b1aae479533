// A tiny C++ "game" recording through frameline.hpp: a main loop of frames with nested spans,
// a worker thread, logs with typed arguments, metrics, process properties and thread names.
// instrument/capi/tests/cpp_game.rs compiles it with g++, runs it and reads the capture back
// event for event (the `// @name` markers give it the expected file:line of each call site).
//
//   g++ -std=c++17 -O2 -Iinstrument/capi/include game.cpp libframeline_capi.a -lpthread -ldl -lm
//   ./a.out ./capture [frames]
#define FL_TARGET "game"
#include "frameline.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

static void physics(int frame) {
    FL_SCOPE("physics"); // @physics
    for (int island = 0; island < 2; ++island) {
        FL_SCOPE("physics.island"); // @island
    }
    if (frame == 1) {
        FL_LOG_DEBUG("contacts {} at frame {}", 12u, frame); // @debug
    }
}

static void render(int frame) {
    FL_SCOPE("render"); // @render
    const std::string passes[] = {"shadow", "gbuffer"};
    for (const std::string &pass : passes) {
        FL_SCOPE_NAMED(pass); // @pass
    }
    FL_METRIC_INT("draw_calls", "count", 100 + frame); // @draw_calls
}

static void worker(int jobs) {
    fl_set_thread_name("cpp-worker");
    for (int job = 0; job < jobs; ++job) {
        FL_SCOPE("job"); // @job
        FL_LOG_INFO("job {} of {} done, ok = {}", job, jobs, true); // @job_log
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LAKE [frames]\n", argv[0]);
        return 2;
    }
    const int frames = argc > 2 ? std::atoi(argv[2]) : 3;
    const fl_property properties[] = {{"engine", "cpp-example"}, {"map", "test_map"}};
    fl_options options = {};
    options.exe = "cpp-game";
    options.max_level = FL_LEVEL_DEBUG;
    options.properties = properties;
    options.property_count = 2;
    fl::Session session(argv[1], &options);
    if (!session.ok()) {
        char message[256];
        fl_last_error(message, sizeof message);
        std::fprintf(stderr, "fl_init failed (%d): %s\n", session.status(), message);
        return 1;
    }
    fl_set_thread_name("cpp-main");
    FL_LOG_INFO("starting {} frames on {} with scale {} and {}", // @start
                frames, "test_map", 0.5f, std::string("vsync"));
    for (int frame = 0; frame < frames; ++frame) {
        FL_FRAME(); // @frame
        {
            FL_SCOPE("frame.update"); // @update
            physics(frame);
            render(frame);
        }
        FL_METRIC_FLOAT("frame_time", "ms", 16.5 + frame); // @frame_time
        if (frame == frames - 1) {
            FL_LOG_WARN("last frame {}: {} {} {}", frame, -7, 'x', 2.25); // @warn
        }
    }
    FL_FRAME(); // @frame_end
    std::thread thread(worker, 2);
    thread.join();
    FL_LOG_ERROR("done"); // @done
    return 0;
}
