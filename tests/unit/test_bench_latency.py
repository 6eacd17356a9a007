"""bench.latency's report of how busy the machine was: the CPUs' busy and stolen shares from
``/proc/stat``, the broker's and classifier's cores, and the line that prints them."""

from __future__ import annotations

import argparse

from bench.latency import CpuTimes, Samples, _report, cores_used, machine_load, render

# cpu  user nice system idle iowait irq softirq steal guest guest_nice
STAT = "cpu  100 5 40 800 20 3 2 30 0 0\ncpu0 50 2 20 400 10 1 1 15 0 0\nintr 1\n"


def test_cpu_times_from_proc_stat() -> None:
    times = CpuTimes.parse(STAT)
    assert times == CpuTimes(busy=100 + 5 + 40 + 3 + 2 + 30, steal=30, total=180 + 800 + 20)


def test_cpu_times_from_a_kernel_without_steal() -> None:
    assert CpuTimes.parse("cpu  10 0 10 80 0 0 0\n") == CpuTimes(busy=20, steal=0, total=100)


def test_machine_load_between_two_readings() -> None:
    first = CpuTimes(busy=1_000, steal=100, total=4_000)
    last = CpuTimes(busy=1_970, steal=120, total=5_000)
    assert machine_load(first, last) == {"busy_pct": 97.0, "steal_pct": 2.0}
    assert machine_load(last, last) is None  # no time between them: no share


def test_cores_used_counts_only_samples_after_the_warm_up() -> None:
    cpu = [(0.0, 0.0), (5.0, 9.0), (10.0, 10.0), (20.0, 21.0), (30.0, 32.0)]
    assert cores_used(cpu, since=10.0) == 1.1
    assert cores_used(cpu, since=30.0) is None  # one sample: no interval
    assert cores_used(cpu, since=10.0, until=20.0) == 1.1


def test_report_and_render_say_how_busy_the_machine_was() -> None:
    samples = Samples(stamped=[0.010, 0.020, 0.030], received=[0.012, 0.022, 0.032], changes=3)
    samples.cpu = [(10.0, 1.0), (40.0, 13.0)]
    samples.broker_cpu = [(10.0, 5.0), (40.0, 38.0)]
    samples.load_generator_cpu = [(10.0, 2.0), (40.0, 14.0), (63.0, 14.0)]
    samples.reader_cpu = [(10.0, 3.0), (40.0, 9.0), (63.0, 9.5)]
    samples.machine = [
        (5.0, CpuTimes(busy=0, steal=0, total=1)),  # in the warm-up: not counted
        (10.0, CpuTimes(busy=1_000, steal=0, total=2_000)),
        (40.0, CpuTimes(busy=6_880, steal=120, total=8_000)),
        (63.0, CpuTimes(busy=6_900, steal=120, total=9_000)),  # after the load: not counted
    ]
    samples.cpu.append((63.0, 13.1))
    samples.broker_cpu.append((63.0, 38.1))
    args = argparse.Namespace(
        broker="kafka", delivery="auto", mix="campaign", rate=20_000, seconds=30, warmup=10.0
    )
    report = _report(args, {"sent": 800_000, "seconds": 40.0}, samples)
    assert report["machine"] == {
        "busy_pct": 98.0,
        "steal_pct": 2.0,
        "broker_cores": 1.1,
        "classifier_cores": 0.4,
        "load_generator_cores": 0.4,
        "reader_cores": 0.2,
    }
    assert report["mo_to_stamp"]["p50_ms"] == 20.0  # nearest rank: an observed delay
    assert report["classifier_cpu_s_per_million"] == 20.0  # 12 CPU-s over 30 s at 20,000 MO/s
    rendered = render(report)
    assert (
        "CPUs 98.0% busy (2.0% stolen by the host); broker 1.1 cores, classifier 0.4 cores, "
        "load generator 0.4 cores, reader 0.2 cores" in rendered
    )
    assert "timed over 30 s after 10 s of warm-up" in rendered


def test_the_warm_up_defaults_to_longer_on_apache_kafka() -> None:
    from bench.latency import parse_args

    assert parse_args(["--broker", "kafka"]).warmup == 90.0  # the broker's JIT (the module docstring)
    assert parse_args([]).warmup == 10.0
    assert parse_args(["--broker", "kafka", "--warmup", "5"]).warmup == 5.0


def test_memory_growth_compares_the_first_and_last_timed_minutes() -> None:
    samples = Samples()
    samples.memory = [(5.0, 10_000), (95.0, 50_000), (140.0, 51_000), (300.0, 52_000), (389.0, 55_000)]
    args = argparse.Namespace(
        broker="kafka", delivery="auto", mix="campaign", rate=20_000, seconds=300, warmup=90.0
    )
    memory = _report(args, {"sent": 1, "seconds": 390.0}, samples)["classifier_memory"]
    # The warm-up's 10 MB is not the base: the first timed minute's most (51 MB) is.
    assert (memory["first_minute_max_mb"], memory["last_minute_max_mb"]) == (49.8, 53.7)
    assert memory["growth_pct"] == 7.8


def test_percentile_ms_is_an_observed_delay_in_milliseconds() -> None:
    from bench.classifier import percentile_ms

    delays = [0.030, 0.010, 0.020, 0.2004]
    assert [percentile_ms(delays, q) for q in (50, 99, 100)] == [20.0, 200.4, 200.4]
    assert percentile_ms([], 99) is None
