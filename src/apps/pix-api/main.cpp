// pix-api: the publishing gateway. Wires config, logging, metrics, a broker publisher and the
// HTTP server; all behaviour lives in libpix.
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "pix/gateway/config.hpp"
#include "pix/gateway/publisher_factory.hpp"
#include "pix/gateway/server.hpp"
#include "pix/service/lifecycle.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/tracer.hpp"

int main(int argc, char** argv) {
  auto parsed = pix::gateway::parse_gateway_config(argc, argv);
  if (auto* exit = std::get_if<pix::gateway::ParseExit>(&parsed)) {
    std::fputs(exit->message.c_str(), exit->code == 0 ? stdout : stderr);
    return exit->code;
  }
  const auto& config = std::get<pix::gateway::GatewayConfig>(parsed);
  pix::telemetry::setup_logging(config.service_name(), config.log_level, config.log_format);

  try {
    // First, before any thread starts: SIGTERM/SIGINT become a stop, SIGHUP a certificate reload.
    pix::service::StopSource stop;
    std::mutex reload_mutex;
    pix::gateway::Server* reloadable = nullptr;  // under reload_mutex; set while the server serves
    pix::service::SignalWatcher signals(stop, {{SIGHUP, [&] {
                                                  std::lock_guard lock(reload_mutex);
                                                  if (reloadable != nullptr) reloadable->reload_tls(true);
                                                }}});

    pix::telemetry::Registry metrics;
    auto tracer = pix::telemetry::tracer_from_env(config.service_name(), metrics);
    auto publisher = pix::gateway::make_publisher(config);

    boost::asio::io_context io(config.io_threads);
    pix::gateway::Server server(io, config, *publisher, metrics, tracer.get());
    server.listen();
    server.start();
    spdlog::info("{} listening on {}://{}:{}{} ({})", config.service_name(), config.scheme(), config.listen_address,
                 server.port(), config.route(), pix::gateway::describe_broker(config));
    if (!config.auth.required) {
      spdlog::warn(
          "authentication is off: anyone who reaches {}:{} may publish to every topic (--auth jwt turns it on)",
          config.listen_address, server.port());
    } else {
      spdlog::info("authentication: {}{}",
                   config.auth.jwks.empty() ? "" : "bearer JWT (issuer " + config.auth.issuer + ")",
                   config.tls.client_ca_file.empty() ? "" : " or client certificates");
    }

    // SIGHUP: take new certificate files now (they are also looked for every --tls-reload-check-s).
    {
      std::lock_guard lock(reload_mutex);
      reloadable = &server;
    }

    int exit_code = 0;
    stop.on_stop([&] {
      boost::asio::post(io, [&] {
        spdlog::info("{}: draining (no new connections; finishing requests in progress)", stop.reason());
        server.shutdown([&](std::size_t unanswered) {
          if (unanswered > 0) {
            spdlog::error("drain deadline reached with {} requests still waiting for the broker", unanswered);
            exit_code = 1;
          }
          io.stop();
        });
      });
    });

    std::vector<std::thread> extra;
    for (int i = 1; i < config.io_threads; ++i) extra.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : extra) t.join();
    {
      std::lock_guard lock(reload_mutex);
      reloadable = nullptr;
    }

    const std::size_t left = publisher->drain(config.drain_timeout);
    if (left > 0) {
      spdlog::error("{} events had no broker verdict at shutdown", left);
      exit_code = 1;
    }
    if (!tracer->flush(std::chrono::seconds(5))) spdlog::warn("tracing: spans still queued at exit were dropped");
    spdlog::info("stopped cleanly");
    return exit_code;
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
