#!/usr/bin/env python3
"""Tests of bench/run.py's own logic (what it reports and how it reaches the brokers), without
brokers or servers:

    python3 bench/run_test.py
"""
import importlib.util
import os
import unittest

_spec = importlib.util.spec_from_file_location("bench_run", os.path.join(os.path.dirname(__file__), "run.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def result(target, rate, p99_us, cpu, errors=0):
    return {"target": target, "half_rate": rate, "max_rate": 2 * rate,
            "latency_us": {"p50": p99_us / 2, "p90": p99_us, "p99": p99_us, "p99.9": p99_us, "max": p99_us},
            "cpu_s_per_1000": cpu, "errors": errors, "completed": 1000, "peak_rss_kb": 1024, "idle_rss_kb": 1024,
            "connections": 7}


def secured(target, rate, p99_us, cpu, errors=0):
    r = result(target, rate * 0.8, p99_us, cpu)
    r["equal_rate"] = {"rate": rate, "latency_us": result(target, rate, p99_us, cpu)["latency_us"],
                       "cpu_s_per_1000": cpu, "errors": errors, "completed": 1000, "connections": 9}
    return r


class SecuredEdgeReport(unittest.TestCase):
    def test_ratio_is_at_the_plaintext_gateways_half_load_rate(self):
        plain = result("api-kafka", 20000, 5000, 0.020)
        tls = secured("api-kafka-tls", 20000, 7000, 0.024)
        self.assertAlmostEqual(bench.tls_cpu_ratio(plain, tls), 1.2)
        lines = "\n".join(bench.secured_edge_lines({"api-kafka": plain, "api-kafka-tls": tls}))
        self.assertIn("api-kafka-tls / api-kafka CPU per request at 20000/s: **1.20x** (target ≤ 1.25x: met)", lines)
        self.assertIn("| api-kafka | 20000 | 2.50 | 5.00 | 0 | 0.0200 | 7 |", lines)
        self.assertIn("| api-kafka-tls | 20000 | 3.50 | 7.00 | 0 | 0.0240 | 9 |", lines)

    def test_the_plaintext_gateways_steady_run_is_the_base_when_there_is_one(self):
        plain = result("api-kafka", 20000, 5000, 0.030)  # its half-load run, with the growing pool
        plain["equal_rate"] = {"rate": 20000, "latency_us": plain["latency_us"], "cpu_s_per_1000": 0.020,
                               "errors": 0, "completed": 1000, "connections": 128}
        tls = secured("api-kafka-tls", 20000, 7000, 0.025)
        self.assertAlmostEqual(bench.tls_cpu_ratio(plain, tls), 1.25)
        lines = "\n".join(bench.secured_edge_lines({"api-kafka": plain, "api-kafka-tls": tls}))
        self.assertIn("| api-kafka | 20000 | 2.50 | 5.00 | 0 | 0.0200 | 128 |", lines)
        self.assertIn("**1.25x** (target ≤ 1.25x: met)", lines)

    def test_over_the_target_says_so(self):
        plain = result("api-kafka", 100, 5000, 0.020)
        tls = secured("api-kafka-tls", 100, 5000, 0.030)
        lines = "\n".join(bench.secured_edge_lines({"api-kafka": plain, "api-kafka-tls": tls}))
        self.assertIn("**1.50x** (target ≤ 1.25x: NOT met)", lines)

    def test_without_the_plaintext_target_there_is_no_ratio(self):
        tls = secured("api-kafka-tls", 100, 5000, 0.030)
        del tls["equal_rate"]
        self.assertIsNone(bench.tls_cpu_ratio(None, tls))
        lines = "\n".join(bench.secured_edge_lines({"api-kafka-tls": tls}))
        self.assertIn("not measured (needs api-kafka in the same run)", lines)

    def test_no_secured_target_no_section(self):
        self.assertEqual(bench.secured_edge_lines({"api-kafka": result("api-kafka", 100, 5000, 0.02)}), [])

    def test_markdown_carries_the_section(self):
        class Args:
            bound_ms, step_seconds, half_seconds, saga_bound_ms = 50.0, 4, 10, 5000.0
        machine = {"cpu": "x", "cores": 2, "memory_gib": 1, "os": "Debian", "kernel": "6", "kafka": "3.9.1",
                   "rabbitmq": "3.10"}
        md = bench.markdown([result("api-kafka", 100, 5000, 0.02), secured("api-kafka-tls", 100, 5000, 0.022)],
                            None, machine, Args())
        self.assertIn("| api-kafka-tls | 160 |", md)  # the main table: its own max sustainable rate
        self.assertIn("**1.10x**", md)


METRICS = """# HELP pix_trace_spans_exported_total Spans the trace backend accepted
# TYPE pix_trace_spans_exported_total counter
pix_trace_spans_exported_total 1536
# HELP pix_trace_spans_dropped_total Spans dropped: queue_full (backend slow or down), ...
# TYPE pix_trace_spans_dropped_total counter
pix_trace_spans_dropped_total{reason="queue_full"} 120
pix_trace_spans_dropped_total{reason="export_failed"} 0
pix_trace_spans_dropped_total{reason="rejected"} 3
pix_trace_queue_spans 17
pix_http_requests_total{route="/kafka",status="200"} 9000 1700000000000
"""


def traced_run(label, arg, cpu):
    return {"tracing": label, "sampler_arg": arg, "cpu_s_per_1000": cpu}


class TracingReport(unittest.TestCase):
    def test_metrics_parse_with_labels_and_timestamps(self):
        m = bench.parse_metrics(METRICS)
        self.assertEqual(m["pix_trace_spans_exported_total"], 1536)
        self.assertEqual(m['pix_trace_spans_dropped_total{reason="queue_full"}'], 120)
        self.assertEqual(m['pix_http_requests_total{route="/kafka",status="200"}'], 9000)
        self.assertEqual(bench.parse_metrics('a{l="x y"} 2\n# c\nbad\nb NaN-ish\n'), {'a{l="x y"}': 2})

    def test_span_counts_by_reason(self):
        self.assertEqual(bench.span_counts(METRICS), {"exported": 1536, "queued": 17,
                                                      "dropped": {"queue_full": 120, "export_failed": 0,
                                                                  "rejected": 3}})
        self.assertIsNone(bench.span_counts("pix_http_requests_total 5\n"))  # tracing off: no tracer
        self.assertIsNone(bench.span_counts(""))  # no answer

    def test_span_counts_add_up_over_processes(self):
        one = bench.span_counts(METRICS)
        total = bench.sum_span_counts([one, None, one])
        self.assertEqual(total["exported"], 3072)
        self.assertEqual(total["dropped"], {"queue_full": 240, "export_failed": 0, "rejected": 6})
        self.assertIsNone(bench.sum_span_counts([None, None]))
        self.assertEqual(bench.dropped_text(total), "246 (queue_full 240, rejected 6)")
        self.assertEqual(bench.dropped_text({"exported": 1, "queued": 0, "dropped": {"queue_full": 0}}), "0")
        self.assertEqual(bench.exported_text(total), "3072 (+34 still queued)")
        self.assertEqual(bench.dropped_text(None), "-")

    def test_spans_settle_when_nothing_is_queued_nor_in_flight_twice(self):
        def c(exported, queued, dropped=0):
            return {"exported": exported, "queued": queued, "dropped": {"queue_full": dropped}}
        self.assertFalse(bench.settled(None, c(10, 0), 0))  # one poll proves nothing
        self.assertFalse(bench.settled(c(10, 5), c(10, 0), 0.5))  # a batch just taken: maybe in flight
        self.assertFalse(bench.settled(c(10, 0), c(522, 0), 0))  # it was: now counted
        self.assertTrue(bench.settled(c(522, 0), c(522, 0), 0.5))
        self.assertFalse(bench.settled(c(522, 0, 3), c(522, 0, 4), 0))

    def test_without_the_queue_gauge_the_counts_must_stay_still_past_the_schedule_delay(self):
        old = {"exported": 238, "queued": None, "dropped": {"queue_full": 0}}
        self.assertFalse(bench.settled(old, dict(old), 2.0))  # the next scheduled export may be due
        self.assertTrue(bench.settled(old, dict(old), bench.TRACE_QUIET_S))
        self.assertFalse(bench.settled(old, {**old, "exported": 380}, 9))
        no_gauge = METRICS.replace("pix_trace_queue_spans 17\n", "")
        self.assertIsNone(bench.span_counts(no_gauge)["queued"])
        self.assertIsNone(bench.sum_span_counts([bench.span_counts(no_gauge), bench.span_counts(METRICS)])["queued"])
        self.assertEqual(bench.exported_text(bench.span_counts(no_gauge)), "1536")

    def test_ratios_against_the_mean_of_the_off_runs(self):
        v = bench.cpu_verdicts([traced_run("off", None, 0.020), traced_run("1%", "0.01", 0.0208),
                                traced_run("100%", "1.0", 0.027), traced_run("off again", None, 0.020)])
        self.assertEqual(v["baseline_cpu_s_per_1000"], 0.02)
        self.assertEqual(v["off_spread"], 0)
        self.assertEqual([r["ratio"] for r in v["runs"]], [1.0, 1.04, 1.35, 1.0])
        self.assertEqual([r["target"] for r in v["runs"]], [None, 1.05, 1.25, None])
        self.assertEqual([r["met"] for r in v["runs"]], [None, True, False, None])

    def test_the_noise_is_the_off_runs_spread(self):
        v = bench.cpu_verdicts([traced_run("off", None, 0.019), traced_run("1%", "0.01", 0.0210),
                                traced_run("off again", None, 0.021)])
        self.assertAlmostEqual(v["off_spread"], 0.1)
        self.assertEqual(v["runs"][1], {"ratio": 1.05, "target": 1.05, "met": True})  # at the target: met

    def test_the_verdict_is_on_the_median_of_the_rounds(self):
        runs = [{"tracing": "1%", "sampler_arg": "0.01", "cpu_ratio": x} for x in (1.30, 1.01, 1.03)]
        runs += [{"tracing": "100%", "sampler_arg": "1.0", "cpu_ratio": x} for x in (1.10, 1.40)]
        runs += [{"tracing": "off", "sampler_arg": None, "cpu_ratio": 1.0}]
        m = bench.median_ratios(runs)
        self.assertEqual([(x["tracing"], x["runs"], x["median_ratio"], x["met"]) for x in m],
                         [("1%", 3, 1.03, True), ("100%", 2, 1.25, True)])  # one noisy 1% run does not decide

    def test_rounds_repeat_the_whole_order(self):
        class Args:
            tracing_rounds = 2
        labels = [label for _, (label, _) in bench.tracing_schedule(Args())]
        self.assertEqual(labels, [c[0] for c in bench.TRACING_CONFIGS] * 2)

    def test_without_an_off_run_there_is_no_ratio(self):
        v = bench.cpu_verdicts([traced_run("1%", "0.01", 0.02)])
        self.assertIsNone(v["baseline_cpu_s_per_1000"])
        self.assertIsNone(v["off_spread"])
        self.assertEqual(v["runs"], [{"ratio": None, "target": 1.05, "met": None}])

    def test_the_traced_environment(self):
        self.assertEqual(bench.tracing_env(None), {})
        self.assertEqual(bench.tracing_env("0.01"), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                                                     "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                                     "OTEL_TRACES_SAMPLER_ARG": "0.01"})
        self.assertEqual([arg for _, arg in bench.TRACING_CONFIGS], [None, "0.01", "1.0", None])

    def tracing(self):
        spans = bench.span_counts(METRICS)

        def gw(label, arg, cpu):
            r = {**traced_run(label, arg, cpu), "rate": 20000, "achieved_rate": 19990.4, "errors": 0,
                 "latency_us": {"p50": 2500, "p99": 5000}, "spans": spans if arg else None}
            return r

        def sg(label, arg, cpu, accounted=True):
            return {**traced_run(label, arg, cpu), "rate": 400, "achieved_rate": 399.7, "errors": 0,
                    "e2e_latency_ms": {"p50": 18.1, "p99": 25.0}, "all_accounted": accounted,
                    "spans": spans if arg else None}

        gateway = bench.with_verdicts({"rate": 20000, "rate_from": "half of api-kafka's max sustainable 40000/s",
                                       "seconds": 10, "connections": 128,
                                       "runs": [gw("off", None, 0.020), gw("1%", "0.01", 0.0206),
                                                gw("100%", "1.0", 0.026), gw("off again", None, 0.020)]})
        saga = bench.with_verdicts({"rate": 400, "seconds": 10,
                                    "runs": [sg("off", None, 0.5), sg("1%", "0.01", 0.55, accounted=False),
                                             sg("100%", "1.0", 0.6), sg("off again", None, 0.5)]})
        return {"target": "tracing", "jaeger": "already running (left running)",
                "order": [label for label, _ in bench.TRACING_CONFIGS], "gateway": gateway, "saga": saga}

    def test_the_table_side_by_side(self):
        t = self.tracing()
        self.assertEqual(t["gateway"]["runs"][1]["cpu_ratio"], 1.03)
        self.assertTrue(t["gateway"]["runs"][1]["target_met"])
        lines = "\n".join(bench.tracing_lines(t))
        self.assertIn("Order: off, 1%, 100%, off again", lines)
        self.assertIn("api-kafka at 20000/s (half of api-kafka's max sustainable 40000/s) for 10 s over 128", lines)
        self.assertIn("| gateway | off | 20000 | 19990 | 2.50 | 5.00 | 0 | 0.0200 | 1.00x | - | - | - |", lines)
        self.assertIn("| gateway | 1% | 20000 | 19990 | 2.50 | 5.00 | 0 | 0.0206 | 1.03x | ≤ 1.05x: met | "
                      "1536 (+17 still queued) | 123 (queue_full 120, rejected 3) |", lines)
        self.assertIn("| gateway | 100% | 20000 | 19990 | 2.50 | 5.00 | 0 | 0.0260 | 1.30x | ≤ 1.25x: NOT met |", lines)
        self.assertIn("| saga | 1% | 400 | 400 | 18.1 | 25.0 | 0 (NOT all accounted) | 0.5500 | 1.10x | "
                      "≤ 1.05x: NOT met |", lines)
        self.assertIn("- gateway (api-kafka) CPU per request against off: 1% **1.03x** (≤ 1.05x: met); "
                      "100% **1.30x** (≤ 1.25x: NOT met); the off runs differ by up to 0.0%", lines)
        self.assertIn("- saga (gateway + 4 stages) CPU per payment against off:", lines)

    def test_skipped_says_why(self):
        lines = bench.tracing_lines({"target": "tracing", "skipped": "Jaeger is not built"})
        self.assertEqual(lines, ["", "Tracing overhead: not measured (Jaeger is not built)."])
        self.assertEqual(bench.tracing_lines(None), [])

    def test_markdown_carries_the_tracing_section(self):
        class Args:
            bound_ms, step_seconds, half_seconds, saga_bound_ms = 50.0, 4, 10, 5000.0
        machine = {"cpu": "x", "cores": 2, "memory_gib": 1, "os": "Debian", "kernel": "6", "kafka": "3.9.1",
                   "rabbitmq": "3.10"}
        md = bench.markdown([result("api-kafka", 100, 5000, 0.02)], None, machine, Args(), self.tracing())
        self.assertIn("| gateway | 100% |", md)
        self.assertIn("| saga | off again |", md)

    def test_tracing_needs_the_stages_and_the_probe(self):
        need = [os.path.basename(p) for p in bench.needed_binaries(["tracing"])]
        self.assertIn("pix-saga-probe", need)
        self.assertIn("pix-settlement", need)


class BrokerAddresses(unittest.TestCase):
    def test_management_api_uses_the_amqp_urls_user(self):
        self.assertEqual(bench.basic_auth("amqp://guest:guest@127.0.0.1:5672/"), "Basic Z3Vlc3Q6Z3Vlc3Q=")
        self.assertEqual(bench.basic_auth("amqp://bench:p%40ss@h:5672/"), "Basic YmVuY2g6cEBzcw==")

    def test_the_seeds_vhost_replaces_the_urls(self):
        self.assertEqual(bench.with_vhost("amqp://guest:guest@127.0.0.1:15772/", "bench-seed"),
                         "amqp://guest:guest@127.0.0.1:15772/bench-seed")
        self.assertEqual(bench.with_vhost("amqp://u:p@h:1/%2F", "a/b"), "amqp://u:p@h:1/a%2Fb")

    def test_a_secured_target_needs_pix_token(self):
        need = [os.path.basename(p) for p in bench.needed_binaries(["api-kafka-tls"])]
        self.assertEqual(need, ["pix-admin", "pix-api", "pix-sim", "pix-token"])
        self.assertIn("pix-saga-probe", [os.path.basename(p) for p in bench.needed_binaries(["saga"])])


if __name__ == "__main__":
    unittest.main()
