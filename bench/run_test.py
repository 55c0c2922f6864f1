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
